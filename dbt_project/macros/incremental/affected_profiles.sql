{#-
    The incremental rebuild: new raw rows are processed without recomputing the world.

    Identity is recomputed in full every build (connected components take seconds), but what follows
    it is kept between builds and brought up to date:

      int_profiles__identifier_changes   identifiers whose profile moved since profile_events was
                                         last written: new, merged, split, erased, or shared now;
      int_profiles__event_candidates     the events to attribute again: new or changed rows of the
                                         staging models (new web and email events by staged_at:
                                         staged_event_candidates), and events carrying a changed identifier
                                         (a view, kept as a table for the rebuild by
                                         affected_profiles' pre-hook: computed once);
      profile_events                     incremental: the events of every profile that changed are
                                         deleted, then the candidates are attributed and inserted;
      int_profiles__affected_profiles    every profile whose events or identifiers changed (old and
                                         new ids); every profile when as_of or a model below changed;
      per-profile attributes             incremental: the rows of the affected profiles are deleted
                                         and recomputed (engagement, purchases, support, category,
                                         and the predictive feature sets, which also recompute a
                                         profile whose tenure moved: predictive_features).

    Models computed over all profiles at once (RFM quantiles, consent, segments) are rebuilt in full
    from these tables; the predictive fits and clusters too, unless nothing they read changed
    (cdp/predictive/reuse.py, macros/predictive/fitted_inputs.sql). `cdp build --full-refresh` rebuilds everything
    but the id registry and the merge log (full_refresh=false: they are history, not a cache).

    Raw tables are append-only or updated in place (an order's status); a raw row deleted by hand
    (not by an erasure, which the identity changes carry) needs a --full-refresh.
    Spark on parquet has no DELETE: there these models are rebuilt in full (keyed_incremental.sql).
-#}

{#- A table the incremental build keeps for itself (not a model), beside int_profiles__identifier_changes. -#}
{%- macro bookkeeping_relation(identifier) -%}
    {%- set changes = cdp.node_relation('int_profiles__identifier_changes') -%}
    {{ return(api.Relation.create(database=changes.database, schema=changes.schema, identifier=identifier, type='table')) }}
{%- endmacro -%}

{#- The mapping profile_events was last attributed with: written by its post-hook, read before it runs. -#}
{%- macro attributed_identifiers_relation() -%}
    {{ return(cdp.bookkeeping_relation('int_profiles__attributed_identifiers')) }}
{%- endmacro -%}

{#-
    The newest staged_at of each append-only staging table when profile_events last attributed its
    events (staged_model, staged_at): written by its post-hook, read by int_profiles__event_candidates
    (staged_event_candidates). A NULL staged_at says the next build must look every staged event up.
-#}
{%- macro attributed_watermarks_relation() -%}
    {{ return(cdp.bookkeeping_relation('int_profiles__attributed_watermarks')) }}
{%- endmacro -%}

{#- Whether `name` (a model) will be updated rather than rebuilt this run: it exists, this is no full refresh, and the engine can delete. -#}
{%- macro updates_in_place(name) -%}
    {%- if not execute or flags.FULL_REFRESH or cdp.rebuilds_keyed_incremental_models() or model.resource_type == 'unit_test' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set relation = cdp.node_relation(name) -%}
    {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {{ return(existing is not none and existing.type == 'table') }}
{%- endmacro -%}

{#-
    What decides every per-profile row besides the data: as_of and the code of the incremental models.
    When it differs from the previous build's, every profile is affected.
-#}
{%- macro incremental_settings_fingerprint() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set parts = [var('as_of') | string] -%}
    {%- for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | sort(attribute='name') -%}
        {%- if node.config.get('materialized') == 'incremental' or node.name.startswith('int_profiles__') -%}
            {%- do parts.append(node.name ~ '=' ~ node.checksum.checksum) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('|'))) }}
{%- endmacro -%}

{#-
    Post-hook of profile_events: remember the mapping it was attributed with (nothing on Spark parquet).
    Built in a selection without int_profiles__affected_profiles, it also marks that list stale, so the
    next build recomputes every profile's attributes.
-#}
{%- macro remember_attributed_identifiers() -%}
    {%- if not execute or cdp.rebuilds_keyed_incremental_models() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set copy = cdp.attributed_identifiers_relation() -%}
    {%- set watermarks = cdp.attributed_watermarks_relation() -%}
    {%- set newest = [] -%}
    {%- for name in cdp.append_only_staging_tables() if cdp.has_staged_at(name) -%}
        {%- do newest.append("select '" ~ name ~ "' as staged_model, max(staged.staged_at) as staged_at from "
            ~ cdp.node_relation(name) ~ ' as staged') -%}
    {%- endfor -%}
    {%- set string = dbt.type_string() -%}
    {%- set statements = ['drop table if exists ' ~ cdp.kept_event_candidates_relation()] -%}
    {%- if cdp.relation_exists(copy) and cdp.affected_profiles_are_current() and not cdp.affects_everyone() -%}
        {%- do statements.extend(cdp.apply_identifier_changes(copy)) -%}
    {%- else -%}
        {#- emptied and refilled, not dropped: int_profiles__event_candidates reads it, and Postgres binds a view to its tables -#}
        {%- do statements.extend([
            cdp.create_table_if_missing(copy, 'profile_id ' ~ string ~ ', identifier_type ' ~ string ~ ', identifier_value ' ~ string),
            'delete from ' ~ copy,
            'insert into ' ~ copy ~ ' (profile_id, identifier_type, identifier_value) '
                ~ 'select profile_id, identifier_type, identifier_value from ' ~ cdp.node_relation('profile_identifiers'),
        ]) -%}
    {%- endif -%}
    {%- do statements.extend([
        cdp.create_table_if_missing(watermarks, 'staged_model ' ~ string ~ ', staged_at ' ~ dbt.type_timestamp()),
        'delete from ' ~ watermarks,
    ]) -%}
    {%- if newest -%}
        {%- do statements.append('insert into ' ~ watermarks ~ ' (staged_model, staged_at) ' ~ newest | join(' union all ')) -%}
    {%- endif -%}
    {%- set affected = cdp.node_relation('int_profiles__affected_profiles') -%}
    {%- if cdp.relation_exists(affected)
        and not cdp.affected_profiles_are_current() -%}
        {#- events changed for profiles no list names: the next build recomputes every profile's attributes -#}
        {%- do statements.append('update ' ~ affected ~ " set settings_fingerprint = 'stale: profile_events was built without it'") -%}
    {%- endif -%}
    {%- do cdp.run_statements(statements) -%}
    {%- do adapter.cache_dropped(cdp.kept_event_candidates_relation()) -%}
{%- endmacro -%}

{#-
    The statements that bring the remembered mapping (`copy`) up to profile_identifiers by this
    invocation's int_profiles__identifier_changes, which is the difference between the two, instead
    of copying all of profile_identifiers again (3.8M rows at 1M people: ~5 s; an empty difference
    costs nothing). Deleted, then copied again from profile_identifiers:
      - every identifier named by a change (new, or moved to another profile);
      - every identifier of a profile named as a change's former profile (an identifier that left
        it, or belongs to no profile now: the change names that profile, not the value);
      - every identifier of an erased profile (leaves the changes out; its identifiers are
        tombstoned, so none of them is in profile_identifiers again).
    Only when the changes were compared with this copy: int_profiles__affected_profiles, built by
    this invocation, lists the profiles from them (the caller checks).
-#}
{%- macro apply_identifier_changes(copy) -%}
    {%- set changes = cdp.node_relation('int_profiles__identifier_changes') -%}
    {%- set named = 'exists (select 1 from ' ~ changes ~ ' as changes where changes.identifier_type = {0}.identifier_type'
        ~ ' and changes.identifier_value = {0}.identifier_value)' -%}
    {%- set former = '{0}.profile_id in (select changes.previous_profile_id from ' ~ changes
        ~ ' as changes where changes.previous_profile_id is not null)' -%}
    {{ return([
        'delete from ' ~ copy ~ ' as remembered where ' ~ named.replace('{0}', 'remembered') ~ ' or ' ~ former.replace('{0}', 'remembered')
            ~ ' or remembered.profile_id in (' ~ cdp.erased_profile_ids_by_name() ~ ')',
        'insert into ' ~ copy ~ ' (profile_id, identifier_type, identifier_value) '
            ~ 'select resolved.profile_id, resolved.identifier_type, resolved.identifier_value from '
            ~ cdp.node_relation('profile_identifiers') ~ ' as resolved where ' ~ named.replace('{0}', 'resolved') ~ ' or ' ~ former.replace('{0}', 'resolved'),
    ]) }}
{%- endmacro -%}

{#- Pre-hook of the per-profile incremental models: drop the rows of every affected profile (they are recomputed). -#}
{%- macro delete_affected_profiles(column='profile_id') -%}
    {%- if cdp.is_updating() and cdp.affects_everyone() -%}
        delete from {{ this }}
    {%- elif cdp.is_updating() -%}
        delete from {{ this }}
        where {{ column }} in (select affected.profile_id from {{ cdp.node_relation('int_profiles__affected_profiles') }} as affected)
            or {{ column }} in ({{ cdp.erased_profile_ids_by_name() }})
    {%- endif -%}
{%- endmacro -%}

{#- `<column> in (affected profiles)` when the model is updated in place and not for everyone, else `true`. -#}
{%- macro is_affected_profile(column) -%}
    {%- if cdp.is_updating() and not cdp.affects_everyone() -%}
        {{ column }} in (select affected.profile_id from {{ cdp.node_relation('int_profiles__affected_profiles') }} as affected)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro -%}

{#-
    int_profiles__event_candidates: the `where` that keeps an event of `source` to attribute again when
    profile_events is updated in place, else nothing. An event is a candidate when profile_events holds
    no row for its key with the same `compared` values [(column in profile_events, expression here)]
    outside the emptied profiles, or when one of its `identifiers` {identifier_type: expression}
    changed profile. So the answer is the same before and after profile_events' pre-hook deletes the
    emptied profiles' events (affected_profiles keeps the candidates before it runs).
-#}
{%- macro where_event_is_candidate(source, key, compared, identifiers) -%}
    {%- if not cdp.updates_in_place('profile_events') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set same = [] -%}
    {%- for column, expression in compared -%}
        {%- do same.append('and kept.' ~ column ~ ' is not distinct from ' ~ expression) -%}
    {%- endfor -%}
    where (
        not exists (
            select 1 from {{ cdp.node_relation('profile_events') }} as kept
            where kept.source = '{{ source }}' and kept.event_id = {{ key }} {{ same | join(' ') }}
                and kept.profile_id not in (select emptied.profile_id from emptied_profiles as emptied)
        )
        {{ cdp.or_carries_identifier_in(identifiers, 'changed_identifiers') }}
    )
{%- endmacro -%}

{#- `or <expression> in (<among>'s identifier values of its type)` for each of {identifier_type: expression}: the event carries one of them. -#}
{%- macro or_carries_identifier_in(identifiers, among) -%}
    {%- for identifier_type, expression in identifiers.items() %}
        or {{ expression }} in (
            select listed.identifier_value from {{ among }} as listed
            where listed.identifier_type = '{{ identifier_type }}'
        )
    {%- endfor -%}
{%- endmacro -%}

{#-
    int_profiles__event_candidates for an append-only staging model (`staged`, which has staged_at):
    the CTE `<name>` keeps the events where_event_is_candidate would keep, without looking every
    staged event up in profile_events. When profile_events is updated in place, only these are
    looked up (`<name>_examined`):
      - the events staged after the newest one profile_events attributed (its watermark);
      - the events carrying a changed identifier, or one profile_events attributed to a profile it
        empties (so the answer is the same before and after its pre-hook deletes their events).
    Every other staged event is held by profile_events already, or resolved to no profile when it
    was attributed and carries no identifier that changed since, so it would resolve to none again.
    Of the examined, a candidate is one profile_events does not hold outside the emptied profiles
    (`<name>_held`: the held rows are found by the examined keys, not by a join with every event),
    or one carrying a changed identifier. `identifiers` is {identifier_type: column}.
    The watermark is not trusted, and every staged event is examined, when there is none, when the
    pre-hook attributes every event again (it sets it to NULL), or when it is newer than the newest
    staged row (staging was rebuilt under an earlier clock). Needs the view's changed_identifiers,
    emptied_profiles and revisited_identifiers CTEs.
-#}
{%- macro staged_event_candidates(name, source, staged, key, identifiers) -%}
    {%- if not cdp.updates_in_place('profile_events') -%}
{{ name }} as (
    select {{ name }}.* from {{ ref(staged) }} as {{ name }}
)
    {%- else -%}
    {%- set relation = cdp.node_relation(staged) -%}
    {%- set carried = {} -%}
    {%- for identifier_type, column in identifiers.items() -%}
        {%- do carried.update({identifier_type: name ~ '.' ~ column}) -%}
    {%- endfor -%}
    {%- set watermarks = cdp.attributed_watermarks_relation() -%}
    {%- set watermark -%}
        (
            select watermarks.staged_at from {{ watermarks }} as watermarks
            where watermarks.staged_model = '{{ staged }}'
                and watermarks.staged_at <= (select max(newest.staged_at) from {{ relation }} as newest)
        )
    {%- endset -%}
{{ name }}_examined as (
    select {{ name }}.* from {{ ref(staged) }} as {{ name }}
    {%- if cdp.relation_exists(watermarks) and cdp.has_staged_at(staged) %}
    -- NULL staged_at: staged before the column existed, and looked up by the build that added it
    where coalesce({{ name }}.staged_at > {{ watermark }}, {{ watermark }} is null)
        {{ cdp.or_carries_identifier_in(carried, 'revisited_identifiers') }}
    {%- endif %}
),

{{ name }}_held as (
    select kept.event_id from {{ cdp.node_relation('profile_events') }} as kept
    where kept.source = '{{ source }}'
        and kept.event_id in (select examined.{{ key }} from {{ name }}_examined as examined)
        and kept.profile_id not in (select emptied.profile_id from emptied_profiles as emptied)
),

{{ name }} as (
    select {{ name }}.* from {{ name }}_examined as {{ name }}
    where not exists (select 1 from {{ name }}_held as held where held.event_id = {{ name }}.{{ key }})
        {{ cdp.or_carries_identifier_in(carried, 'changed_identifiers') }}
)
    {%- endif -%}
{%- endmacro -%}

{#-
    The identifiers whose events int_profiles__event_candidates looks up again: the changed ones, and
    every one profile_events attributed to a profile it empties (a query of identifier_type,
    identifier_value; needs the view's changed_identifiers and emptied_profiles).
-#}
{%- macro revisited_identifiers() -%}
    select changed.identifier_type, changed.identifier_value from changed_identifiers as changed
    {%- set attributed = cdp.attributed_identifiers_relation() -%}
    {%- if cdp.relation_exists(attributed) %}
    union
    select attributed.identifier_type, attributed.identifier_value
    from {{ attributed }} as attributed
    where attributed.profile_id in (select emptied.profile_id from emptied_profiles as emptied)
    {%- endif -%}
{%- endmacro -%}

{#-
    Whether int_profiles__affected_profiles was built by this dbt invocation. A selection that leaves
    it out (`cdp build --select int_attributes__support`) finds last build's list: the incremental
    models then recompute everything rather than trust it.
-#}
{%- macro affected_profiles_are_current() -%}
    {%- set affected = cdp.node_relation('int_profiles__affected_profiles') -%}
    {%- if not cdp.relation_exists(affected) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set answer = run_query(
        'select count(*) from ' ~ affected ~ " where profile_id is null and invocation_id = '" ~ invocation_id ~ "'"
    ) -%}
    {{ return(answer.rows[0][0] > 0) }}
{%- endmacro -%}

{#- Whether this build recomputes every profile (int_profiles__affected_profiles says so, or is stale); read when the model compiles. -#}
{%- macro affects_everyone() -%}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return(true) }}
    {%- endif -%}
    {%- if not cdp.affected_profiles_are_current() -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set affected = cdp.node_relation('int_profiles__affected_profiles') -%}
    {%- set answer = run_query('select count(*) from ' ~ affected ~ ' where profile_id is null and is_everyone') -%}
    {{ return(answer.rows[0][0] > 0) }}
{%- endmacro -%}

{#-
    The profiles whose events profile_events' pre-hook deletes, to attribute them again: every profile
    an identifier moved away from, and every erased one (a query of one column, profile_id).
-#}
{%- macro emptied_profiles() -%}
    select changes.previous_profile_id as profile_id
    from {{ cdp.node_relation('int_profiles__identifier_changes') }} as changes
    where changes.previous_profile_id is not null
    union all
    {{ cdp.erased_profile_ids_by_name() }}
{%- endmacro -%}

{#- Pre-hook of profile_events: delete the events of the emptied profiles (they are attributed again). -#}
{%- macro delete_events_of_moved_identifiers() -%}
    {%- if cdp.is_updating() and not cdp.affected_profiles_are_current() -%}
        -- the identifier changes are not this invocation's: attribute every event again
        delete from {{ this }}
        {%- if cdp.relation_exists(cdp.attributed_watermarks_relation()) -%}
        ; update {{ cdp.attributed_watermarks_relation() }} set staged_at = null
        {%- endif -%}
    {%- elif cdp.is_updating() -%}
        delete from {{ this }}
        where profile_id in ({{ cdp.emptied_profiles() }})
    {%- endif -%}
{%- endmacro -%}

{#-
    Where the rebuild keeps this build's event candidates (int_profiles__event_candidates, a view)
    between int_profiles__affected_profiles and profile_events, so that the view, which joins every
    staged event with the profiles, is computed once. Made by the pre-hook of affected_profiles
    (keep_event_candidates), read by both, dropped by profile_events' post-hook.
-#}
{%- macro kept_event_candidates_relation() -%}
    {{ return(cdp.bookkeeping_relation('int_profiles__event_candidates_kept')) }}
{%- endmacro -%}

{#-
    Whether int_profiles__affected_profiles (`this` when called from it or its hooks) lists the
    affected profiles this build, rather than say everyone is: profile_events is updated in place and
    the settings fingerprint is the previous build's.
-#}
{%- macro lists_affected_profiles() -%}
    {%- if not cdp.updates_in_place('profile_events') -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- if previous is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set same = run_query(
        "select count(*) from " ~ previous ~ " where settings_fingerprint = '" ~ cdp.incremental_settings_fingerprint() ~ "'"
    ) -%}
    {{ return(same.rows[0][0] > 0) }}
{%- endmacro -%}

{#- Pre-hook of int_profiles__affected_profiles: this build's candidates as a table, when it lists the affected profiles. -#}
{%- macro keep_event_candidates() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set kept = cdp.kept_event_candidates_relation() -%}
    {%- set statements = ['drop table if exists ' ~ kept] -%}
    {%- if cdp.lists_affected_profiles() -%}
        {%- do statements.append(cdp.create_table_as_select(kept,
            'select * from ' ~ cdp.node_relation('int_profiles__event_candidates'))) -%}
    {%- endif -%}
    {%- do cdp.run_statements(statements) -%}
    {#- dbt's relation cache is what relation_exists asks (event_candidates_for_profile_events): tell it -#}
    {%- do adapter.cache_dropped(kept) -%}
    {%- if statements | length > 1 -%}
        {%- do adapter.cache_added(kept) -%}
    {%- endif -%}
{%- endmacro -%}

{#-
    What profile_events reads its candidates from: the table affected_profiles kept in this invocation,
    else the view (a selection without affected_profiles, or a build that attributes every event).
-#}
{%- macro event_candidates_for_profile_events() -%}
    {%- if execute and cdp.updates_in_place('profile_events') and cdp.affected_profiles_are_current() -%}
        {%- set kept = cdp.kept_event_candidates_relation() -%}
        {%- if cdp.relation_exists(kept) -%}
            {{ return(kept) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(ref('int_profiles__event_candidates')) }}
{%- endmacro -%}

{#- is_incremental(), and false in a unit test (which builds the model from its given rows). -#}
{%- macro is_updating() -%}
    {{ return(execute and model.resource_type != 'unit_test' and is_incremental()) }}
{%- endmacro -%}

{#-
    The config of a per-profile incremental model (attributes): keyed by profile_id, the affected
    profiles' rows deleted by the pre-hook and recomputed (the model filters its input with
    is_affected_profile). Called at the top of the model; depends on the affected profiles.
-#}
{%- macro per_profile_incremental() -%}
    {%- do config(
        materialized=cdp.keyed_incremental_materialization(),
        incremental_strategy=cdp.keyed_incremental_strategy(),
        unique_key='profile_id',
        on_schema_change='append_new_columns',
        pre_hook="{{ cdp.delete_affected_profiles() }}",
    ) -%}
    -- incremental: recomputes the affected profiles' rows (macros/incremental/affected_profiles.sql)
    -- depends_on: {{ ref('int_profiles__affected_profiles') }}
{%- endmacro -%}

{#-
    The erased profile ids (privacy_erasures), by relation name: the pre-hooks delete their rows, since
    no list of changes may keep an erased profile's id (macros/privacy/erasure.sql).
-#}
{%- macro erased_profile_ids_by_name() -%}
    select erasures.profile_id from {{ cdp.node_relation('privacy_erasures') }} as erasures where erasures.profile_id is not null
{%- endmacro -%}
