"""ISO 4217 active currency codes (alphabetic), lowercase as Stripe and the warehouse spell them.

Funds codes and precious metals (XAU, XDR, ...) are left out: no invoice is booked in them."""

from __future__ import annotations

ISO_4217 = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd btn bwp byn bzd
    cad cdf chf clp cny cop crc cup cve czk djf dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip
    gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr kmf kpw krw kwd
    kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio
    nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll
    sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd twd tzs uah ugx usd uyu uzs ved ves vnd vuv wst
    xaf xcd xcg xof xpf yer zar zmw zwg zwl
    """.split()
)


def iso_4217() -> list[str]:
    """The codes as a sorted list (what a GX value set takes)."""
    return sorted(ISO_4217)


# ISO 4217 minor units where they are not 2 (the decimals an amount in that currency may carry).
ZERO_DECIMAL = frozenset("bif clp djf gnf isk jpy kmf krw pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd iqd jod kwd lyd omr tnd".split())


def minor_unit_violations(amount: str, currency: str) -> str:
    """SQL condition (DuckDB and PostgreSQL): `amount` carries more decimals than `currency`'s minor unit."""
    zero = ", ".join(f"'{c}'" for c in sorted(ZERO_DECIMAL))
    three = ", ".join(f"'{c}'" for c in sorted(THREE_DECIMAL))
    return (
        f"{amount} is not null and case when {currency} in ({zero}) then {amount} <> round({amount}, 0) "
        f"when {currency} in ({three}) then {amount} <> round({amount}, 3) "
        f"else {amount} <> round({amount}, 2) end"
    )
