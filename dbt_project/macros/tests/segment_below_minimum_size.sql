{#- Segments with fewer members than their YAML's meta.segment.min_size (use with severity: warn). -#}
{% test segment_below_minimum_size(model) %}
    select segment_name, member_count, min_size
    from {{ model }}
    where member_count < min_size
{% endtest %}
