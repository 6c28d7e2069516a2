"""ISO 4217 active currency codes (alphabetic), lowercase as Stripe and the warehouse spell them.

Funds codes and precious metals (XAU, XDR, ...) are left out: no invoice is booked in them."""

from __future__ import annotations

ISO_4217 = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd btn bwp byn bzd
    cad cdf chf clp cny cop crc cuc cup cve czk djf dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip
    gmd gnf gtq gyd hkd hnl hrk htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr kmf kpw krw kwd
    kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio
    nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll
    sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd twd tzs uah ugx usd uyu uzs ves vnd vuv wst
    xaf xcd xcg xof xpf yer zar zmw zwg zwl
    """.split()
)


def iso_4217() -> list[str]:
    """The codes as a sorted list (what a GX value set takes)."""
    return sorted(ISO_4217)
