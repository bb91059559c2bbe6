"""ISO 4217 currency codes a program may use: the circulating currencies.

Fund codes (``BOV``, ``CHE``...), precious metals (``XAU``...) and the testing codes are left
out: nobody pays for a coffee in them. The list changes a few times a decade (``XCG`` replaced
``ANG`` in 2025, ``ZWG`` came in 2024); both the old and the new code are kept during such a
change, since tills switch at their own pace.
"""

from __future__ import annotations

_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER
ZAR ZMW ZWG ZWL
"""

ISO_4217: frozenset[str] = frozenset(_CODES.split())


def is_currency(code: str) -> bool:
    """Whether ``code`` is a circulating ISO 4217 currency, written in capitals (``EUR``)."""
    return code in ISO_4217
