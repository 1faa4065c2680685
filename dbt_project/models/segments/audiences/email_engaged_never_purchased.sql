-- Opened or clicked an email in the last 90 days but never bought anything.
{{ has_attribute("email_opens_90d + email_clicks_90d > 0 and orders_count = 0") }}
