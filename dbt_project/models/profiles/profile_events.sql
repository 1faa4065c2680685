{#-
    Every behavioural event attributed to a profile, one row per event, from every source:
    the stream attributes and segment predicates read ("did X within N days").

    Attribution goes through profile_identifiers (so shared identifiers attribute nothing):
      web     customer id, else email, else device (all resolve to the same profile when set);
      shop    the order's customer id (event_type order_placed, with the order's status);
      email   the recipient email;  pos  loyalty card, else phone;  support  requester email.
    Events whose identifiers resolve to no profile (an anonymous till sale, a page view on
    a shared tablet) are left out.
-#}
with

web_events as (
    select * from {{ ref('stg_web__events') }}
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

email_events as (
    select * from {{ ref('stg_email__events') }}
),

pos_transactions as (
    select * from {{ ref('stg_pos__transactions') }}
),

support_tickets as (
    select * from {{ ref('stg_support__tickets') }}
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
where profile_id is not null
