"""partnercast: an open-source engine for through-channel marketing.

A vendor (or a concierge agency working for it) builds a campaign once; channel partners
customise it under their own brand and approve it; it goes out on the partners' channels in
30-60 day cycles. The sub-packages are the architecture: ``core`` (settings, database,
tenancy, dispatch), ``plugins`` (the channel contract and hooks), ``channels`` (built-in
channel plugins), ``campaigns`` (campaign-as-code, rendering, approval, cycles) and
``tenants`` (tenants, partners, contacts, segments).
"""

__version__ = "0.1.0"
