"""Which symbols the simulated market lists (pure): a fixed set of real optionable names plus numbered ones.

A symbol outside the universe is unknown to the sim exactly as it would be to Alpaca or Yahoo
(`UnknownSymbol`, nothing invented), so a typo such as `AAPLL` fails its partition instead of
getting a made-up history. The universe is:

- `NAMED`: the ETFs and stocks a trader expects to find (the default watchlist, the demo, the live
  benchmarks, broad index and sector ETFs and a few hundred of the most traded optionable names);
- the synthetic names `S0000`, `S0001`, ...: `SYNTHETIC_DEFAULT` of them (S0000..S0999) always, for
  tests and benchmarks that need many symbols; more with `OH_SIM_SYNTHETIC=N` in the environment of
  the processes that serve data (S0000..S{N-1}). No real ticker is an S followed by four digits, so
  they never make a typo valid.

`universe(synthetic)` lists them (`oh symbols list --provider sim` prints it), `synthetic_symbols(n)`
gives the first n numbered names (what a benchmark of n symbols asks for), `is_listed(symbol)`
answers for the configured universe, `is_synthetic(symbol)` says whether a name is a numbered one
(the sim lists fewer options on those: oh.adapters.sim.options.listing_depth). Everything is deterministic; docs/sim_market.md lists the names.
"""

from __future__ import annotations

import os
import re

SYNTHETIC_ENV = "OH_SIM_SYNTHETIC"
SYNTHETIC_DEFAULT = 1000
SYNTHETIC_MAX = 100_000  # S00000..S99999 still fits a six-character ticker
_SYNTHETIC = re.compile(r"^S(\d{4,5})$")

_ETFS = """
SPY QQQ IWM DIA VOO VTI RSP MDY IJH IJR EFA EEM VWO VEA FXI EWZ EWJ EWW EWY EWT EWG EWU INDA KWEB
XLF XLK XLE XLV XLI XLY XLP XLU XLB XLRE XLC SMH SOXX XBI IBB KRE KBE XHB ITB XRT XME XOP OIH GDX GDXJ
SLV GLD IAU USO UNG DBA DBC TLT IEF SHY AGG BND LQD HYG JNK EMB TIP ARKK ARKG TQQQ SQQQ SPXL SPXS SOXL
SOXS UVXY VXX SVXY TNA TZA LABU LABD FAS FAZ UPRO SDS SH PSQ QID SSO QLD VIXY IYR VNQ XLY JETS BITO
IBIT FBTC ETHA MSOS TAN ICLN LIT URA COPX
"""

_STOCKS = """
AAPL MSFT NVDA AMZN META GOOGL GOOG TSLA BRK.B AVGO AMD INTC QCOM TXN MU AMAT LRCX KLAC ADI MRVL NXPI
ON MCHP SWKS SMCI ARM TSM ASML ORCL CRM ADBE NOW INTU IBM CSCO ACN SNOW PLTR PANW CRWD FTNT ZS NET DDOG
MDB TEAM WDAY SHOP XYZ PYPL COIN HOOD SOFI AFRM UPST MSTR RIOT MARA CLSK NFLX DIS ROKU SPOT WBD
CMCSA CHTR T VZ TMUS UBER LYFT ABNB DASH BKNG EXPE MAR HLT RCL CCL NCLH DAL UAL AAL LUV JBLU BA
LMT RTX NOC GD GE HON MMM CAT DE EMR ETN ITW PH ROK UNP CSX NSC UPS FDX JPM BAC WFC C GS MS SCHW BLK
AXP V MA COF USB PNC TFC BK STT MET PRU AIG ALL PGR TRV CB SPGI MCO ICE CME NDAQ KKR BX APO XOM CVX COP
OXY EOG DVN FANG MPC VLO PSX SLB HAL BKR KMI WMB OKE ET EPD LNG CVE SU ENB FCX NEM SCCO AA CLF NUE
STLD MOS CF NTR DOW DD LIN APD SHW ECL PPG UNH JNJ LLY ABBV MRK PFE BMY AMGN GILD REGN VRTX BIIB MRNA
BNTX NVAX ISRG TMO DHR ABT MDT SYK BSX EW ZBH CVS CI ELV HUM CNC MCK COR CAH TDOC DXCM ILMN HCA
WMT COST TGT HD LOW DG DLTR BBY KR ACI KO PEP MDLZ KHC GIS HSY MO PM STZ BUD TAP MNST KDP PG CL KMB
CLX EL ULTA NKE LULU UAA DECK CROX SBUX MCD CMG YUM DPZ QSR WING DRI TXRH F GM RIVN LCID NIO XPEV LI
TM HMC STLA RACE BABA JD PDD BIDU NTES SE GRAB MELI NU SNAP PINS RDDT ETSY EBAY W CHWY
PTON ZM DOCU OKTA TWLO U RBLX EA TTWO SONY AMC GME BB NOK ERIC DELL HPQ HPE WDC STX NTAP ANET
KEYS TER ENPH SEDG FSLR RUN PLUG CHPT BE NEE DUK SO D AEP EXC SRE XEL PCG EIX CEG VST NRG AMT CCI
PLD EQIX DLR O SPG PSA WELL AVB EQR VICI WY IRM CBRE Z OPEN RKT LEN DHI PHM TOL NVR KBH MHK WHR SHAK
CAVA ELF CELH HIMS APP AXON TTD IOT CRWV ALAB VRT ANF GAP M KSS URBN AEO DKS TJX ROST BURL
"""

NAMED: tuple[str, ...] = tuple(sorted(set(_ETFS.split()) | set(_STOCKS.split())))
_NAMED_SET = frozenset(NAMED)


def synthetic_symbols(count: int) -> list[str]:
    """The first `count` numbered sim symbols: S0000, S0001, ... (five digits from S10000 on)."""
    if not 0 <= count <= SYNTHETIC_MAX:
        raise ValueError(f"the sim market has 0 to {SYNTHETIC_MAX} synthetic symbols, not {count}")
    return [f"S{i:04d}" for i in range(count)]


def is_synthetic(symbol: str) -> bool:
    """Whether `symbol` is spelled as a numbered sim name (S0000.., listed or not): the smaller underlyings."""
    match = _SYNTHETIC.match(symbol)
    return match is not None and not (len(match.group(1)) == 5 and match.group(1)[0] == "0")


def synthetic_count(environ: dict[str, str] | None = None) -> int:
    """How many synthetic symbols the sim lists here: OH_SIM_SYNTHETIC if set (and larger), else the default."""
    text = (os.environ if environ is None else environ).get(SYNTHETIC_ENV, "").strip()
    if not text:
        return SYNTHETIC_DEFAULT
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"{SYNTHETIC_ENV}={text!r} must be a whole number of synthetic sim symbols") from None
    if not 0 <= count <= SYNTHETIC_MAX:
        raise ValueError(f"{SYNTHETIC_ENV}={count} must be between 0 and {SYNTHETIC_MAX}")
    return max(count, SYNTHETIC_DEFAULT)


def universe(synthetic: int | None = None) -> tuple[str, ...]:
    """Every symbol the sim lists: NAMED, then S0000.. (`synthetic` of them; default: as configured here)."""
    return NAMED + tuple(synthetic_symbols(synthetic_count() if synthetic is None else synthetic))


def is_listed(symbol: str, synthetic: int | None = None) -> bool:
    """Whether the sim market lists `symbol` (with `synthetic` numbered names; default: as configured here)."""
    if symbol in _NAMED_SET:
        return True
    if not is_synthetic(symbol):
        return False  # S0123 is a synthetic name; S00123 is not (one spelling per number)
    return int(symbol[1:]) < (synthetic_count() if synthetic is None else synthetic)
