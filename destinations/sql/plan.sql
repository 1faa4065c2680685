-- The plan for one sync: desired rows (sync_desired) against the last confirmed state,
-- by key and payload hash. One row per change to send, per record skipped because the
-- destination rejected it before, and per invalid desired row. Sendable rows come first
-- (seq 1..n) so the engine can stream them in batches by seq range. Runs in the state store
-- (destinations/plan.py creates the plan table from it).
{% import "_dialect.sql" as d with context %}
with

-- people a privacy request erased whom this sync's destination held: forgotten by
-- destinations/privacy.py (pending until confirmed), never planned again
erased as (
    select profile_id, status from {{ schema }}.privacy_receipts where sync_name = :sync_name
),

-- the rows to send, by key and hash: only the changes fetch their payloads (below)
desired as (
    select record_key, profile_id, payload_hash from sync_desired
    where exclusion is null and invalid_reason is null
        and profile_id not in (select profile_id from erased)
),

invalid as (
    select * from sync_desired where invalid_reason is not null
),

confirmed as (
    select record_key, profile_id, payload_hash, first_confirmed_at, destination_id
    from {{ schema }}.state
    where sync_name = :sync_name
        and (profile_id is null or profile_id not in (select profile_id from erased where status = 'pending'))
),

-- sent earlier without an answer (crash, timeout, outage): may be at the destination
in_doubt as (
    select
        record_key,
        {{ d.any_value('profile_id') }} as profile_id,
        {{ d.arg_max('op', 'sent_at') }} as last_op,
        {{ d.arg_max('payload_hash', 'sent_at') }} as last_payload_hash,
        {{ d.arg_max('change_id', 'sent_at') }} as last_change_id
    from {{ schema }}.in_flight
    where sync_name = :sync_name
        and (profile_id is null or profile_id not in (select profile_id from erased where status = 'pending'))
    group by record_key
),

-- what the destination holds, or may hold, from this sync
known as (
    select
        coalesce(confirmed.record_key, in_doubt.record_key) as record_key,
        coalesce(confirmed.profile_id, in_doubt.profile_id) as profile_id,
        confirmed.payload_hash,
        confirmed.first_confirmed_at,
        confirmed.destination_id,
        confirmed.record_key is not null as is_confirmed,
        in_doubt.record_key is not null as is_in_doubt,
        in_doubt.last_op as in_doubt_op,
        in_doubt.last_payload_hash as in_doubt_payload_hash,
        in_doubt.last_change_id as in_doubt_change_id
    from confirmed
    full outer join in_doubt on in_doubt.record_key = confirmed.record_key
),

-- people who must leave every destination whatever the mode: consent withdrawn for this
-- sync's purpose, or a deletion request
-- (privacy_blocked.sql; computed where the data lives and loaded beside the state when that differs)
privacy_blocked as (
    {%- if privacy_blocked_loaded %}
    select * from sync_privacy_blocked
    {%- else %}
    {% filter indent(4) %}{% include "privacy_blocked.sql" %}{% endfilter %}
    {%- endif %}
),

-- what the destination holds that privacy takes away: never held by the mass-removal guard
known_blocked as (
    select
        *,
        coalesce(
            profile_id in (select profile_id from privacy_blocked)
            or record_key in (select record_key from privacy_blocked),
            false
        ) as is_privacy_blocked
    from known
),

-- a key two profiles claim is reported, and what the destination holds under it is left alone
ambiguous_keys as (
    select distinct record_key from invalid where invalid_reason = 'duplicate key'
),

diff as (
    select
        coalesce(desired.record_key, known.record_key) as record_key,
        coalesce(desired.profile_id, known.profile_id) as profile_id,
        desired.payload_hash,
        known.first_confirmed_at,
        known.destination_id,
        known.in_doubt_op,
        known.in_doubt_payload_hash,
        known.in_doubt_change_id,
        desired.record_key is null and coalesce(known.is_privacy_blocked, false) as is_privacy,
        case
            when desired.record_key is null then
                case
                    when known.is_privacy_blocked then 'remove'
                    when known.record_key in (select record_key from ambiguous_keys) then null
                    -- an unanswered add, or an unanswered remove, of someone no longer
                    -- desired: make sure they are gone (in every mode)
                    when known.is_in_doubt and (not known.is_confirmed or known.in_doubt_op = 'remove')
                        then 'remove'
                    {%- if mode == 'mirror' %}
                    else 'remove'
                    {%- endif %}
                end
            when known.record_key is null or not known.is_confirmed then 'add'
            -- an unanswered change may or may not have landed: send the record again
            when known.is_in_doubt then 'update'
            {%- if mode != 'add_only' %}
            when desired.payload_hash <> known.payload_hash or :full_resync then 'update'
            {%- endif %}
        end as op
    from desired
    full outer join known_blocked as known on known.record_key = desired.record_key
),

changes as (
    select
        diff.record_key,
        diff.profile_id,
        desired.payload,
        diff.payload_hash,
        diff.op,
        diff.first_confirmed_at,
        diff.destination_id,
        -- the same unanswered change sent again keeps its id (the receiver de-duplicates);
        -- a new change gets a new one, even if it repeats an old one (re-adding someone)
        case
            when diff.in_doubt_op = diff.op and diff.in_doubt_payload_hash is not distinct from diff.payload_hash
                then diff.in_doubt_change_id
            else {{ d.md5(":run_id || '|' || diff.op || '|' || diff.record_key || '|' || coalesce(diff.payload_hash, '')") }}
        end as change_id,
        {{ d.sha256('diff.record_key') }} as key_sha256,
        diff.op = 'remove' and diff.is_privacy as is_privacy
    from diff
    -- a desired row's payload (a removal has none): its key is unique among the rows to send,
    -- as duplicate_keys.sql made every repeated one invalid
    left join sync_desired as desired
        on diff.payload_hash is not null
        and desired.record_key = diff.record_key
        and desired.exclusion is null
        and desired.invalid_reason is null
    where diff.op is not null
),

-- records the destination rejected outright (or that failed too often) wait until
-- their payload changes
rejected as (
    select key_sha256, op, payload_hash
    from {{ schema }}.failures
    where sync_name = :sync_name and is_permanent
),

planned as (
    select
        changes.change_id,
        case when rejected.key_sha256 is null then changes.op else 'skip_rejected' end as op,
        changes.profile_id,
        changes.record_key,
        changes.key_sha256,
        changes.payload,
        changes.payload_hash,
        changes.first_confirmed_at,
        changes.destination_id,
        cast(null as varchar) as invalid_reason,
        changes.is_privacy
    from changes
    left join rejected
        on rejected.key_sha256 = changes.key_sha256
        and rejected.op = changes.op
        and rejected.payload_hash is not distinct from changes.payload_hash
),

reported as (
    select
        cast(null as varchar) as change_id,
        'invalid' as op,
        profile_id,
        record_key,
        {{ d.sha256('record_key') }} as key_sha256,
        cast(null as varchar) as payload,
        payload_hash,
        cast(null as timestamp) as first_confirmed_at,
        cast(null as varchar) as destination_id,
        invalid_reason,
        false as is_privacy
    from invalid
),

final as (
    select
        row_number() over (
            order by
                -- privacy removals first: a run the guard stops still sends them (seq 1..n)
                case
                    when op = 'remove' and is_privacy then 0
                    when op = 'remove' then 1
                    when op = 'add' then 2
                    when op = 'update' then 3
                    else 4
                end,
                record_key,
                profile_id
        ) as seq,
        *
    from (select * from planned union all select * from reported) as planned_and_reported
)

select * from final order by seq
