"""HTML blueprints, one package per role (public, auth, account, host, coordinator, admin); the shared pieces
(common, converters, formatting) and the Stripe webhook beside them."""
from flask import Flask


def register_blueprints(app: Flask) -> None:
    # Imported here, not at the top: the blueprints' modules import the app's services and models, which the
    # application factory sets up first.
    from app.web.account.routes import bp as account_bp
    from app.web.admin.routes import bp as admin_bp
    from app.web.auth.routes import bp as auth_bp
    from app.web.coordinator.allocation import bp as allocation_bp
    from app.web.coordinator.orders import bp as orders_bp
    from app.web.coordinator.payments import bp as payments_bp
    from app.web.coordinator.routes import bp as coordinator_bp
    from app.web.coordinator.waitlist import bp as waitlist_bp
    from app.web.host.routes import bp as host_bp
    from app.web.public.allocation import bp as fordelning_bp
    from app.web.public.routes import bp as public_bp
    from app.web.public.transparency import bp as transparency_bp
    from app.web.stripe_webhook import bp as stripe_bp

    for blueprint in (public_bp, auth_bp, host_bp, coordinator_bp, admin_bp, stripe_bp, payments_bp, account_bp,
                      transparency_bp, waitlist_bp, orders_bp, allocation_bp, fordelning_bp):
        app.register_blueprint(blueprint)
