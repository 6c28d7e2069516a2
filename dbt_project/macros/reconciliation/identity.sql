{#
    Normalisation used by identity resolution (models/intermediate/int_customer_identity.sql).
#}

{# The domain of an e-mail address, lowercase ('Ops@Acme.COM' -> 'acme.com'). #}
{% macro email_domain(email) -%}
    nullif(lower(trim(split_part({{ email }}, '@', 2))), '')
{%- endmacro %}

{# A web domain, lowercase, without scheme, `www.` or path ('https://www.Acme.com/' -> 'acme.com'). #}
{% macro normalise_domain(domain) -%}
    nullif(regexp_replace(
        regexp_replace(lower(trim({{ domain }})), '^(https?://)?(www\.)?', ''), '/.*$', ''
    ), '')
{%- endmacro %}

{#
    A legal name reduced to its words: lowercase, punctuation dropped, legal-form suffixes removed
    ('ACME, Inc.' and 'Acme Inc' -> 'acme'). Both engines' regexp_replace take the 'g' flag; only the
    word boundary is spelled differently.
#}
{% macro normalise_name(name) -%}
    nullif(trim(regexp_replace(
        regexp_replace(lower({{ name }}), '[^a-z0-9]+', ' ', 'g'),
        '{{ regex_word_boundary() }}(inc|incorporated|llc|ltd|limited|gmbh|ag|sa|sas|bv|plc|co|corp|corporation|company){{ regex_word_boundary() }}',
        '', 'g'
    )), '')
{%- endmacro %}
