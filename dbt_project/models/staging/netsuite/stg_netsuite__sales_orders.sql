with

latest as (
    {{ latest_version(source('netsuite', 'salesOrder')) }}
)

select
    {{ json_text('id') }} as sales_order_id,
    -- the Stripe subscription id the integration writes (any case)
    {{ json_nonempty('externalid') }} as external_id,
    {{ json_text('tranid') }} as tran_id,
    {{ json_text('type') }} as transaction_type,
    {{ json_text('entity') }} as customer_id,
    {{ netsuite_currency_code(json_text('currency')) }} as currency,
    {{ json_text('currency') }} as currency_id,
    {{ text_to_amount(json_text('foreigntotal')) }} as total,
    {{ json_text('status') }} as status,
    cast({{ json_text('trandate') }} as date) as tran_date,
    {{ netsuite_datetime_to_timestamp(json_text('createddate')) }} as created_at,
    {{ netsuite_datetime_to_timestamp(json_text('lastmodifieddate')) }} as updated_at,
    {{ lineage_columns() }}
from latest
