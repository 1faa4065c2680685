-- Customers in the lapsed lifecycle stage (see profile_attributes.lifecycle_stage).
{{ has_attribute("lifecycle_stage = 'lapsed'") }}
