{#-
    Every behavioural event attributed to a profile, one row per event, from every source:
    the stream attributes and segment predicates read ("did X within N days").

    Attribution goes through profile_identifiers (so shared identifiers attribute nothing):
      web     customer id, else email, else device (all resolve to the same profile when set);
      shop    the order's customer id (event_type order_placed, with the order's status);
      email   the recipient email;  pos  loyalty card, else phone;  support  requester email.
    Events whose identifiers resolve to no profile (an anonymous till sale, a page view on
    a shared tablet) are left out.

    Incremental (macros/incremental/affected_profiles.sql): the pre-hook deletes the events of every
    profile an identifier moved away from, and the build inserts what int_profiles__event_candidates
    attributes (the deleted events, new and changed ones), replacing rows by (source, event_id).
    The post-hook remembers the mapping used, for the next build's int_profiles__identifier_changes.
    After changing how events are attributed, run `cdp build --full-refresh`.
-#}
{{
    config(
        materialized=cdp.keyed_incremental_materialization(),
        incremental_strategy=cdp.keyed_incremental_strategy(),
        unique_key=['source', 'event_id'],
        on_schema_change='append_new_columns',
        pre_hook="{{ cdp.delete_events_of_moved_identifiers() }}",
        post_hook="{{ cdp.remember_attributed_identifiers() }}",
    )
}}
-- the affected profiles are read from the candidates before this model changes the table
-- depends_on: {{ ref('int_profiles__affected_profiles') }}

with

-- depends_on: {{ ref('int_profiles__event_candidates') }}
candidates as (
    select * from {{ cdp.event_candidates_for_profile_events() }}
),

final as (
    select * from candidates
    where profile_id is not null
)

select * from final
