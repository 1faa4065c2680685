{#-
    The events profile_events attributes this build, attributed as profile_events documents: every
    event on a full rebuild; when profile_events is updated in place (macros/incremental/
    affected_profiles.sql), only the events it does not hold yet (new, or deleted by its pre-hook
    because their profile changed), the ones whose status, amount or time changed (orders,
    tickets), and the ones carrying an identifier whose profile moved. New web and email events
    are found by when they were staged (staged_event_candidates). Events that resolve to no
    profile are kept (profile_id NULL) so the affected profiles can be told; profile_events drops them.
-#}
{{ config(materialized='view') }}
-- depends_on: {{ ref('int_profiles__identifier_changes') }}

with

-- noqa: disable=LT02
{%- if cdp.updates_in_place('profile_events') %}

changed_identifiers as (
    select
        identifier_type,
        identifier_value
    from {{ ref('int_profiles__identifier_changes') }}
),

-- profiles whose events profile_events deletes before it inserts these (its pre-hook)
emptied_profiles as (
    {{ cdp.emptied_profiles() }}
),

-- the staged web and email events carrying these are looked up again (staged_event_candidates)
revisited_identifiers as (
    {{ cdp.revisited_identifiers() }}
),
{%- endif %}
-- noqa: enable=LT02

-- each source's events to attribute again (all on a full rebuild), picked before they are joined
-- with the identifiers: a rebuild joins only these
-- web and email events are staged tables: new ones are found by staged_at, not in profile_events
{{ cdp.staged_event_candidates(
    'web_events', 'web', 'stg_web__events', 'event_id',
    {'customer_id': 'customer_id', 'email': 'email', 'anonymous_id': 'anonymous_id'},
) }},

orders as (
    select orders.* from {{ ref('stg_shop__orders') }} as orders
    {{ cdp.where_event_is_candidate(
        'shop', 'orders.order_id',
        [('status', 'orders.status'), ('amount', 'orders.total_amount'), ('occurred_at', 'orders.ordered_at')],
        {'customer_id': 'orders.customer_id'},
    ) }}
),

{{ cdp.staged_event_candidates('email_events', 'email', 'stg_email__events', 'event_id', {'email': 'email'}) }},

pos_transactions as (
    select pos_transactions.* from {{ ref('stg_pos__transactions') }} as pos_transactions
    {{ cdp.where_event_is_candidate(
        'pos', 'pos_transactions.transaction_id', [],
        {'loyalty_card_id': 'pos_transactions.loyalty_card_id', 'phone': 'pos_transactions.phone'},
    ) }}
),

support_tickets as (
    select support_tickets.* from {{ ref('stg_support__tickets') }} as support_tickets
    {{ cdp.where_event_is_candidate(
        'support', 'support_tickets.ticket_id',
        [('status', 'support_tickets.status'), ('occurred_at', 'support_tickets.opened_at')],
        {'email': 'support_tickets.email'},
    ) }}
),

profile_identifiers as (
    select * from {{ ref('profile_identifiers') }}
),

web as (
    select
        coalesce(by_customer_id.profile_id, by_email.profile_id, by_anonymous_id.profile_id) as profile_id,
        'web' as source,
        web_events.event_id,
        web_events.event_type,
        cast(null as {{ dbt.type_string() }}) as status,
        web_events.order_id,
        web_events.product_id,
        web_events.product_category,
        web_events.search_query,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        cast(null as decimal(12, 2)) as amount,
        web_events.occurred_at
    from web_events
    {{ profile_joined_on('customer_id', 'web_events.customer_id') }}
    {{ profile_joined_on('email', 'web_events.email') }}
    {{ profile_joined_on('anonymous_id', 'web_events.anonymous_id') }}
),

shop as (
    select
        by_customer_id.profile_id,
        'shop' as source,
        orders.order_id as event_id,
        'order_placed' as event_type,
        orders.status,
        orders.order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as product_category,
        cast(null as {{ dbt.type_string() }}) as search_query,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        orders.total_amount as amount,
        orders.ordered_at as occurred_at
    from orders
    {{ profile_joined_on('customer_id', 'orders.customer_id') }}
),

email as (
    select
        by_email.profile_id,
        'email' as source,
        email_events.event_id,
        email_events.event_type,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as product_category,
        cast(null as {{ dbt.type_string() }}) as search_query,
        email_events.campaign_id,
        cast(null as decimal(12, 2)) as amount,
        email_events.occurred_at
    from email_events
    {{ profile_joined_on('email', 'email_events.email') }}
),

pos as (
    select
        coalesce(by_loyalty_card_id.profile_id, by_phone.profile_id) as profile_id,
        'pos' as source,
        pos_transactions.transaction_id as event_id,
        'store_purchase' as event_type,
        case when pos_transactions.amount < 0 then 'refunded' else 'completed' end as status,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as product_category,
        cast(null as {{ dbt.type_string() }}) as search_query,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        pos_transactions.amount,
        pos_transactions.occurred_at
    from pos_transactions
    {{ profile_joined_on('loyalty_card_id', 'pos_transactions.loyalty_card_id') }}
    {{ profile_joined_on('phone', 'pos_transactions.phone') }}
),

support as (
    select
        by_email.profile_id,
        'support' as source,
        support_tickets.ticket_id as event_id,
        'ticket_opened' as event_type,
        support_tickets.status,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as product_category,
        cast(null as {{ dbt.type_string() }}) as search_query,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        cast(null as decimal(12, 2)) as amount,
        support_tickets.opened_at as occurred_at
    from support_tickets
    {{ profile_joined_on('email', 'support_tickets.email') }}
),

unioned as (
    select * from web
    union all
    select * from shop
    union all
    select * from email
    union all
    select * from pos
    union all
    select * from support
)

select * from unioned
