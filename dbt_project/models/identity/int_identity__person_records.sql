{#-
    The CRM contacts and shop customers, normalised once per build: one row per source record, with
    its identifiers and the person columns profiles' survivorship picks from.

    The staging views normalise on every read (email and phone checks, the phone's country, names,
    the tombstone filter): about 3 s and 4 s at 1M people, threads 1. int_identity__record_identifiers
    and profiles both read them in full, so a build paid for them twice; both read this table now.
    Built before privacy_tombstones, it is an identity building block: its post-hook scrubs the rows
    of a person erased in this build (macros/privacy/erasure.sql), as the staging views keep out those
    erased before.
-#}
with

crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

shop_customers as (
    select * from {{ ref('stg_shop__customers') }}
),

person_records as (
    select
        'crm' as source,
        contact_id as record_id,
        email,
        phone,
        loyalty_card_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        first_name,
        last_name,
        city,
        country,
        postal_code,
        created_at,
        updated_at
    from crm_contacts
    union all
    select
        'shop' as source,
        cast(customer_id as {{ dbt.type_string() }}) as record_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as loyalty_card_id,
        customer_id,
        first_name,
        last_name,
        city,
        country,
        postal_code,
        created_at,
        updated_at
    from shop_customers
)

select * from person_records
