-- Manual segments (`cdp segments …`): every curated list, members mapped through profile merges.
select
    definitions.segment_name,
    members.profile_id,
    definitions.description as segment_description,
    definitions.owner as segment_owner
from {{ ref('int_segments__manual_definitions') }} as definitions
left join {{ ref('int_segments__manual_members') }} as members
    on members.segment_name = definitions.segment_name
