"""The columns of partner and contact imports, and the header names that mean them.

Headers are compared by their key (:func:`partnercast.tenants.csvfile.column_key`: case,
accents, spaces and punctuation folded, so "E-Mail", "e_mail" and "E Mail" are one).
docs/imports.md lists these aliases; a header not listed is named with ``--map``.
"""

from __future__ import annotations

from collections.abc import Mapping

from partnercast.core.errors import UserError
from partnercast.tenants.csvfile import IGNORE, Schema, column_key

PARTNER_COLUMN = "partner"


def _aliases(table: dict[str, str]) -> dict[str, str]:
    """field -> space-separated aliases, turned into alias key -> field."""
    return {column_key(alias): name for name, aliases in table.items() for alias in aliases.split()}


# Aliases are written with '_' for any run of spaces or punctuation: "first_name" also
# matches "First Name", "first-name" and "FIRST.NAME".
CONTACT_ALIASES = _aliases(
    {
        "external_id": "id contact_id customer_id client_id crm_id ext_id externalid "
        "external_contact_id contact_number customer_number kundennummer kunden_nr "
        "numero_client",
        "email": "e_mail email_address e_mail_address emailaddress mail mail_address "
        "email_adresse e_mail_adresse courriel adresse_e_mail adresse_email correo "
        "correo_electronico",
        "first_name": "firstname first given_name forename vorname prenom nombre",
        "last_name": "lastname last surname family_name nachname familienname nom "
        "nom_de_famille apellido apellidos",
        "company": "company_name account_name account organisation organization firma "
        "unternehmen firmenname societe entreprise empresa",
        "locale": "language lang language_code preferred_language sprache langue idioma",
        "consent": "opt_in optin email_opt_in marketing_opt_in marketing_consent "
        "email_consent gdpr_consent subscribed einwilligung consentement consentimiento",
        "opt_out": "email_opt_out optout opted_out email_optout has_opted_out_of_email "
        "hasoptedoutofemail hs_email_optout unsubscribed unsubscribed_from_all_email "
        "do_not_email donotemail",
        "consent_date": "consent_at consented_at consent_given_at consent_timestamp "
        "opt_in_date optin_date einwilligungsdatum date_consentement",
        "consent_text": "consent_wording consent_statement opt_in_text einwilligungstext",
        "consent_source": "consent_method opt_in_source optin_source einwilligungsquelle",
        PARTNER_COLUMN: "partner_id partner_external_id reseller reseller_id haendler",
    }
)

PARTNER_ALIASES = _aliases(
    {
        "external_id": "id partner_id partner_number account_id account_number",
        "name": "partner_name company company_name account_name",
        "legal_name": "legal_entity registered_name company_legal_name",
        "postal_address": "address mailing_address postal_address_full anschrift adresse",
        "languages": "language langs sprachen langues",
        "contact_name": "poc_name point_of_contact",
        "contact_email": "poc_email point_of_contact_email",
        "time_zone": "timezone tz",
    }
)

# Columns that CRM exports carry and an import has no use for: ignored without a note.
IGNORED = {
    "record_id": "HubSpot's own id of the record",
    "hs_object_id": "HubSpot's own id of the record",
}

PARTNER_REQUIRED = ("external_id", "name", "legal_name", "postal_address")
PARTNER_OPTIONAL = (
    "tier",
    "region",
    "languages",
    "tags",
    "score",
    "time_zone",
    "logo_url",
    "primary_color",
    "secondary_color",
    "signature",
    "sender_name",
    "sender_email",
    "contact_name",
    "contact_email",
    "status",
)
CONTACT_REQUIRED = ("external_id", "email", "consent")
CONTACT_OPTIONAL = (
    "opt_out",
    "first_name",
    "last_name",
    "company",
    "locale",
    "consent_date",
    "consent_text",
    "consent_source",
)

PARTNERS = Schema(PARTNER_REQUIRED, PARTNER_OPTIONAL, PARTNER_ALIASES, IGNORED)
# With a partner named on the command line, a partner column is read only to refuse it.
# Consent may come the other way round, as an opt-out ("Email Opt Out" in Salesforce's
# exports, true meaning no consent): the file needs one of the two.
OPPOSITES = {"consent": "opt_out"}
CONTACTS = Schema(
    CONTACT_REQUIRED,
    (*CONTACT_OPTIONAL, PARTNER_COLUMN),
    CONTACT_ALIASES,
    IGNORED,
    alternatives=OPPOSITES,
)
CONTACTS_WITH_PARTNER = Schema(
    (*CONTACT_REQUIRED, PARTNER_COLUMN),
    CONTACT_OPTIONAL,
    CONTACT_ALIASES,
    IGNORED,
    alternatives=OPPOSITES,
)
KINDS = {"partners": PARTNERS, "contacts": CONTACTS_WITH_PARTNER}


def parse_mapping(kind: str, given: list[str]) -> dict[str, str]:
    """``--map`` values (``COLUMN=FIELD``, ``COLUMN=-`` to ignore) as header key -> field;
    a UserError names the one that is wrong."""
    schema = KINDS[kind]
    mapping: dict[str, str] = {}
    for item in given:
        column, equals, chosen = item.partition("=")
        key, chosen = column_key(column), chosen.strip()
        if not equals or not key:
            raise UserError(f"{item!r} is not COLUMN=FIELD", where="--map")
        if chosen != IGNORE and chosen not in schema.fields:
            raise UserError(
                f"{chosen!r} is not a {kind} field (fields: {', '.join(schema.fields)}; "
                f"'-' ignores the column)",
                where="--map",
            )
        mapping[key] = chosen
    return mapping


def remembered(columns: Mapping[str, object], kind: str) -> dict[str, str]:
    """A tenant's remembered ``--map`` choices for ``kind`` (Tenant.import_columns)."""
    stored = columns.get(kind)
    if not isinstance(stored, dict):
        return {}
    return {str(key): str(value) for key, value in stored.items()}
