-- First purchase (online or in store) within the last 30 days.
{{ has_attribute("first_purchase_at > " ~ dbt.dateadd('day', -30, as_of_timestamp())) }}
