{#-
    Every identifier carried by every source record, one row per (record, identifier).
    A "record" is what asserts that its identifiers belong to one person:
      crm contact, shop customer, support ticket, POS transaction — their own keys;
      web events — one record per distinct (anonymous_id, customer_id, email) combination,
        keyed by its first event_id (a page view with only an anonymous_id asserts nothing new);
      email events — one record per email address, keyed by its first event_id
        (both rolled up by int_identity__event_records).
    Record ids are source keys, never personal data, so profile ids derived from them are too.
-#}
with

person_records as (
    -- the CRM contacts and shop customers, normalised once per build
    select * from {{ ref('int_identity__person_records') }}
),

crm_contacts as (
    select * from person_records
    where source = 'crm'
),

shop_customers as (
    select * from person_records
    where source = 'shop'
),

pos_transactions as (
    select * from {{ ref('stg_pos__transactions') }}
),

support_tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

event_records as (
    -- web and email events rolled up into one record per identifier combination, incrementally
    select * from {{ ref('int_identity__event_records') }}
),

web_combinations as (
    select * from event_records
    where source = 'web'
),

email_addresses as (
    select * from event_records
    where source = 'email'
),

unpivoted as (
    {%- set records = [
        ('crm', 'crm_contacts', 'record_id', 'created_at', 'updated_at', ['email', 'phone', 'loyalty_card_id']),
        ('shop', 'shop_customers', 'record_id', 'created_at', 'updated_at', ['email', 'phone', 'customer_id']),
        ('web', 'web_combinations', 'record_id', 'first_seen_at', 'last_seen_at', ['anonymous_id', 'customer_id', 'email']),
        ('email', 'email_addresses', 'record_id', 'first_seen_at', 'last_seen_at', ['email']),
        ('pos', 'pos_transactions', 'transaction_id', 'occurred_at', 'occurred_at', ['loyalty_card_id', 'phone']),
        ('support', 'support_tickets', 'ticket_id', 'opened_at', 'opened_at', ['email']),
    ] %}
    {%- for source, relation, key, first_seen, last_seen, identifiers in records %}
    {%- set outer_loop = loop %}
    {%- for identifier in identifiers %}
    select
        '{{ source }}' as source,
        cast({{ key }} as {{ dbt.type_string() }}) as record_id,
        '{{ identifier }}' as identifier_type,
        cast({{ identifier }} as {{ dbt.type_string() }}) as identifier_value,
        {{ first_seen }} as first_seen_at,
        {{ last_seen }} as last_seen_at
    from {{ relation }}
    where {{ identifier }} is not null
    {% if not (outer_loop.last and loop.last) %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
)

select * from unpivoted
