"""The season's standard terms: the text every standing offer and contract refers to."""

STANDARD_TERMS_VERSION = "2027.1"

STANDARD_TERMS_TEXT = """\
Sängplats standardvillkor / standard terms, version 2027.1

1. Bindande anbud. Värden har publicerat sina bäddar som ett bindande, stående anbud till det angivna priset per bädd och natt. Samordnarens bokning är accepten; avtalet uppstår när bokningen registreras.
   Binding offer. The host has published the beds as a binding standing offer at the stated price per bed and night. The coordinator's booking is the acceptance; the contract is formed when the booking is recorded.

2. Pris. Priset är slutpris inklusive alla avgifter och kan inte höjas efter bokningen.
   Price. The price is all-in, including every fee, and cannot be raised after booking.

3. Värdens avbokning. Om värden avbokar är det ett avtalsbrott: samordnaren får hela beloppet åter, bäddarna får inte säljas på nytt under säsongen och värden får en prickning.
   Host cancellation. A cancellation by the host is a breach: the coordinator is refunded in full, the beds may not be sold again that season and the host receives a strike.

4. Gästens avbokning. Avbokning är kostnadsfri till och med det datum som anges i avtalet; därefter återbetalas den procentandel som anges.
   Guest cancellation. Cancellation is free up to and including the date stated in the contract; after it, the stated percentage is refunded.

5. Betalning. Betalning sker med kort via Stripe eller mot faktura enligt avtalet.
   Payment. Payment is by card through Stripe or by invoice as the contract states.

6. Tvist. Svensk lag gäller. Avtalet och dess kontrollsumma (SHA-256) kan verifieras offentligt på Sängplats.
   Disputes. Swedish law applies. The contract and its checksum (SHA-256) can be verified publicly on Sängplats.
"""
