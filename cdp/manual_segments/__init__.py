"""Manual segments: named lists of profiles that a person curates (`cdp segments …`).

The lists live in the warehouse, in schema ``manual_segments``, and appear in ``segments``
and ``segment_membership`` at the next build (``int_segments__manual_*`` read them). The
package is split by what each part holds:

``errors``    the ManualSegmentError family and the helpers their messages share
``tables``    the tables (declared once, in the dbt sources YAML), opening the warehouse, transactions
``names``     the name rule and the names dbt segments already hold (from the manifest)
``profiles``  lookups in the public profile models (current id of a retired id, email → profile)
``store``     the writes: create, add, remove, rename, delete — one transaction each
``reads``     list, show, history, members under their current profile ids

Nothing here prints or raises with personal data: profiles are named by profile id only.
A warehouse another process is writing raises :class:`cdp.warehouse.WarehouseBusyError`.
"""

from cdp.manual_segments.errors import (
    InvalidSegmentNameError,
    ManualSegmentError,
    NotMembersError,
    SegmentExistsError,
    SegmentNotFoundError,
    UnknownProfilesError,
    format_ids,
    plural,
)
from cdp.manual_segments.names import dbt_segment_names, validate_segment_name
from cdp.manual_segments.profiles import profile_ids_for_emails, resolve_profile_ids
from cdp.manual_segments.reads import (
    AuditEntry,
    Member,
    SegmentSummary,
    get_segment,
    list_segments,
    segment_history,
    segment_members,
)
from cdp.manual_segments.store import (
    MembershipChange,
    Resolved,
    add_members,
    create_segment,
    delete_segment,
    remove_members,
    rename_segment,
)
from cdp.manual_segments.tables import SCHEMA, TableSpec, ensure_tables, open_warehouse, table_specs, transaction

__all__ = [
    "SCHEMA",
    "AuditEntry",
    "InvalidSegmentNameError",
    "ManualSegmentError",
    "Member",
    "MembershipChange",
    "NotMembersError",
    "Resolved",
    "SegmentExistsError",
    "SegmentNotFoundError",
    "SegmentSummary",
    "TableSpec",
    "UnknownProfilesError",
    "add_members",
    "create_segment",
    "dbt_segment_names",
    "delete_segment",
    "ensure_tables",
    "format_ids",
    "get_segment",
    "list_segments",
    "open_warehouse",
    "plural",
    "profile_ids_for_emails",
    "remove_members",
    "rename_segment",
    "resolve_profile_ids",
    "segment_history",
    "segment_members",
    "table_specs",
    "transaction",
    "validate_segment_name",
]
