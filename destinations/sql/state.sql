-- The sync engine's tables in the warehouse (schema `{{ schema }}`, destinations.state.STATE_SCHEMA).
-- Created if missing by every run; dbt never touches this schema. Keys are kept only where a
-- destination needs them to be addressed again ({{ schema }}.state); logs and error rows carry
-- a SHA-256 of the key. Rendered by destinations/state.py: the run counts come from
-- destinations/summary.py, so a new count is a new column here without editing this file.

create schema if not exists {{ schema }};

-- What each destination has confirmed: one row per (sync, key) the sync added and the
-- destination acknowledged. Mirror mode removes only keys found here.
create table if not exists {{ schema }}.state (
    sync_name varchar not null,
    record_key varchar not null,
    profile_id varchar,
    payload_hash varchar not null,
    first_confirmed_at timestamp not null,
    last_confirmed_at timestamp not null,
    last_run_id varchar not null,
    -- the platform's own id for the record (a Klaviyo profile id), when the connector named one
    destination_id varchar
);
{%- if dialect == "postgres" %}
-- lookups of a few keys (the forget pass; a window commit's delete) use the index, not a scan
-- of every record every sync holds
create index if not exists state_record_key on {{ schema }}.state (record_key);
{%- else %}
-- no index on DuckDB: its semi-joins and the forget pass scan the column anyway (an ART index
-- serves only constant lookups), while keeping one made every window commit that deletes keys
-- pay for it (0.3 s per 10,000 removals: removals ran at 0.4x the connector's own speed).
-- Warehouses created before this drop the index they have.
drop index if exists {{ schema }}.state_record_key;
{%- endif %}

-- One row per run: what was planned, sent, confirmed, failed, and how it ended.
create table if not exists {{ schema }}.runs (
    run_id varchar not null,
    sync_name varchar not null,
    destination varchar not null,
    mode varchar not null,
    is_dry_run boolean not null,
    is_forced boolean not null,
    is_full_resync boolean not null,
    -- running | dry_run | paused | stopped | succeeded | partial | failed | crashed
    status varchar not null,
    message varchar,
    -- what the plan counted (destinations.summary.PLAN_COUNTS)
    {%- for count in plan_counts %}
    {{ count.name }} bigint,
    {%- endfor %}
    -- what happened to the changes sent (destinations.summary.OUTCOME_COUNTS)
    {%- for count in outcome_counts %}
    {{ count.name }} bigint not null default 0,
    {%- endfor %}
    -- how many desired records carry each mapped identifier (JSON: name -> count), before sending
    identifier_coverage varchar,
    -- the platform's own figures for the run (JSON: Destination.report())
    destination_report varchar,
    started_at timestamp not null,
    planned_at timestamp,
    finished_at timestamp
);

-- One row per record change attempted (and per invalid row reported), per run.
create table if not exists {{ schema }}.changes (
    run_id varchar not null,
    sync_name varchar not null,
    seq bigint not null,
    -- add | update | remove, or null for an invalid row
    op varchar,
    profile_id varchar,
    key_sha256 varchar,
    -- confirmed | failed | rejected | invalid
    status varchar not null,
    error varchar,
    recorded_at timestamp not null
);

-- Records the destination did not take. Transient failures are retried by the next run
-- (the plan still differs from the confirmed state); after too many attempts, or when the
-- destination rejects a record outright, the record is skipped until its payload changes.
create table if not exists {{ schema }}.failures (
    sync_name varchar not null,
    key_sha256 varchar not null,
    op varchar not null,
    payload_hash varchar,
    error varchar,
    attempts integer not null,
    is_permanent boolean not null,
    first_failed_at timestamp not null,
    last_failed_at timestamp not null,
    last_run_id varchar not null
);

-- Changes sent whose outcome is not known yet: written before a batch is sent, cleared
-- when the destination answers for each record. Rows left here by a crash, a timeout or
-- an outage mean "may or may not have landed": the next plan re-sends what is desired
-- and removes what is not, so nothing a lost answer applied is left behind.
create table if not exists {{ schema }}.in_flight (
    sync_name varchar not null,
    record_key varchar not null,
    profile_id varchar,
    op varchar not null,
    payload_hash varchar,
    -- re-sending the same change keeps its id, so a receiver can de-duplicate it
    change_id varchar not null,
    run_id varchar not null,
    sent_at timestamp not null
);

-- Pauses and resumes, one row per change (`cdp sync NAME --pause/--resume`): the latest row
-- of a sync is in force. A paused sync's runs record status `paused` and send nothing.
create table if not exists {{ schema }}.controls (
    sync_name varchar not null,
    paused boolean not null,
    reason varchar,
    changed_by varchar not null,
    changed_at timestamp not null
);

-- What a destination may still hold after a plain removal (Mailchimp keeps an archived
-- member, Klaviyo a profile outside the list): the key of each record a sync removed, kept
-- only so that a later privacy request can reach it with the platform's strongest removal.
-- A record added again leaves this table; a forget that is confirmed deletes its rows.
create table if not exists {{ schema }}.departed (
    sync_name varchar not null,
    record_key varchar not null,
    profile_id varchar,
    destination_id varchar,
    departed_at timestamp not null,
    run_id varchar not null
);

-- Privacy receipts: one row per (deletion request of main.privacy_erasures, sync whose
-- destination held the erased profile). Filled by destinations/privacy.py: pending until the
-- destination confirmed the platform's strongest removal; then every other row of that profile
-- in this schema is deleted. Holds ids, times and the platform's answer (codes and ids only).
create table if not exists {{ schema }}.privacy_receipts (
    request_id varchar not null,
    sync_name varchar not null,
    destination varchar not null,
    -- the erased profile's surrogate id (as main.privacy_erasures holds it)
    profile_id varchar not null,
    -- when the request was made (main.privacy_erasures.requested_at)
    requested_at timestamp,
    -- when a sync run found that its destination holds the person
    opened_at timestamp not null,
    -- first time the removal was sent, and when the destination confirmed it
    sent_at timestamp,
    confirmed_at timestamp,
    -- pending | confirmed
    status varchar not null,
    attempts integer not null,
    -- the platform's answer to the last attempt (status code, job id) or its error, redacted
    answer varchar,
    last_run_id varchar not null
);

-- The global suppression list (`cdp suppress add|remove|list`): no sync sends these people,
-- and a destination holding one of them removes them on its sync's next run. Values are
-- normalised (email trimmed and lower-cased, phone in E.164) and kept only as their SHA-256,
-- so the list holds no raw email or phone. A removal keeps the row (who, when) for audit.
create table if not exists {{ schema }}.suppressions (
    -- email | phone
    identifier_type varchar not null,
    value_sha256 varchar not null,
    reason varchar not null,
    added_by varchar not null,
    added_at timestamp not null,
    removed_by varchar,
    removed_at timestamp
);

-- columns added since the first release of these tables
alter table {{ schema }}.in_flight add column if not exists payload_hash varchar;
alter table {{ schema }}.in_flight add column if not exists change_id varchar;
alter table {{ schema }}.state add column if not exists destination_id varchar;
alter table {{ schema }}.runs add column if not exists identifier_coverage varchar;
alter table {{ schema }}.runs add column if not exists destination_report varchar;
{%- for count in plan_counts %}
alter table {{ schema }}.runs add column if not exists {{ count.name }} bigint;
{%- endfor %}
{%- for count in outcome_counts %}
alter table {{ schema }}.runs add column if not exists {{ count.name }} bigint default 0;
{%- endfor %}
