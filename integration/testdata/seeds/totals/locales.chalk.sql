-- resolves: Locale
-- source: db
select id, sales_tax_rate from locales
