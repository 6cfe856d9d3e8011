"""ISO code tables the policy needs: which country and currency codes exist, and minor units."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: ISO 3166-1 alpha-2 codes officially assigned (249). XK (Kosovo) is user-assigned, so not here.
COUNTRY_CODES = _words(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
    NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE
    SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
)
#: ISO 4217 codes of currencies with a minor unit (funds, metals and test codes left out), plus a
#: few recently withdrawn ones (ANG, CUC, SLL, ZWL) that old listings still carry.
CURRENCY_CODES = _words(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
    MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL"""
)

#: ISO 4217 minor-unit exponents that are not 2. IDR is 2 per ISO 4217 even though rupiah prices
#: rarely show cents, so IDR 150,000.00 is amount_minor 15000000.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        _words("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_words("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_words("CLF UYW"), 4),
}


def minor_exponent(currency: str) -> int:
    """Digits after the decimal point in `currency`'s minor unit (2 unless the table says otherwise)."""
    return CURRENCY_EXPONENTS.get(currency, 2)


def country_problem(code: str) -> str | None:
    """None for an assigned ISO 3166-1 alpha-2 code, else what is wrong with it."""
    if code in COUNTRY_CODES:
        return None
    if code.upper() in COUNTRY_CODES:
        return f"country codes are upper case: {code.upper()!r}, not {code!r}"
    return f"unknown country code {code!r} (ISO 3166-1 alpha-2, e.g. 'ID')"


def currency_problem(code: str) -> str | None:
    """None for an ISO 4217 code in CURRENCY_CODES, else what is wrong with it."""
    if code in CURRENCY_CODES:
        return None
    if code.upper() in CURRENCY_CODES:
        return f"currency codes are upper case: {code.upper()!r}, not {code!r}"
    return f"unknown currency code {code!r} (ISO 4217, e.g. 'USD')"
