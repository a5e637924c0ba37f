"""Static catalogue of the demo scenario: organisations, trade lanes, goods, permits.

The organisations are fictional; places are real UN/LOCODEs and goods real HS
subheadings, so the data reads like a port community system's.
"""

from __future__ import annotations

# org id -> (name, kind, city, {member name: roles})
Members = dict[str, tuple[str, ...]]
ORGANISATIONS: dict[str, tuple[str, str, str, Members]] = {
    # --- Busan agencies ---
    "busan-customs": (
        "Busan Main Customs",
        "agency",
        "Busan",
        {"admin": ("admin",), "officer-kim": ("customs",), "officer-park": ("customs",)},
    ),
    "busan-port": (
        "Busan Port Authority",
        "agency",
        "Busan",
        {"admin": ("admin",), "ops": ("port",)},
    ),
    "busan-permits": (
        "Busan Metropolitan City Permit Office",
        "agency",
        "Busan",
        {"admin": ("admin",), "clerk": ("permit_office",), "inspector": ("inspector",)},
    ),
    "busan-energy": (
        "Busan Energy Regulator",
        "agency",
        "Busan",
        {"admin": ("admin",), "regulator": ("energy_regulator",)},
    ),
    "busan-audit": (
        "Busan Metropolitan Audit Office",
        "agency",
        "Busan",
        {"admin": ("admin",), "auditor": ("auditor",)},
    ),
    # --- Sejong agencies ---
    "sejong-customs": (
        "Sejong Customs Office",
        "agency",
        "Sejong",
        {"admin": ("admin",), "officer": ("customs",)},
    ),
    "sejong-port": (
        "Sejong Inland Container Depot Authority",
        "agency",
        "Sejong",
        {"admin": ("admin",), "ops": ("port",)},
    ),
    "sejong-permits": (
        "Sejong City Permit Office",
        "agency",
        "Sejong",
        {"admin": ("admin",), "clerk": ("permit_office",), "inspector": ("inspector",)},
    ),
    "sejong-energy": (
        "Sejong Smart City Energy Regulator",
        "agency",
        "Sejong",
        {"admin": ("admin",), "regulator": ("energy_regulator",)},
    ),
    "sejong-audit": (
        "Sejong City Audit Office",
        "agency",
        "Sejong",
        {"admin": ("admin",), "auditor": ("auditor",)},
    ),
    # --- carriers ---
    "korea-ocean-lines": (
        "Korea Ocean Lines",
        "carrier",
        "Busan",
        {"admin": ("admin",), "ops": ("carrier",)},
    ),
    "pacific-feeder": (
        "Pacific Feeder Shipping",
        "carrier",
        "Busan",
        {"admin": ("admin",), "ops": ("carrier",)},
    ),
    "busan-haulage": (
        "Busan Haulage Co.",
        "carrier",
        "Busan",
        {"admin": ("admin",), "ops": ("carrier",)},
    ),
    "sejong-logistics": (
        "Sejong Inland Logistics",
        "carrier",
        "Sejong",
        {"admin": ("admin",), "ops": ("carrier",)},
    ),
    # --- traders and brokers ---
    "hanbit-electronics": (
        "Hanbit Electronics Co., Ltd.",
        "trader",
        "Busan",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    "sejong-agritech": (
        "Sejong Agritech Inc.",
        "trader",
        "Sejong",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    "shanghai-trading": (
        "Shanghai Pudong Trading Co.",
        "trader",
        "Shanghai",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    "rotterdam-foods": (
        "Rotterdam Fine Foods B.V.",
        "trader",
        "Rotterdam",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    "la-machinery": (
        "Los Angeles Machinery Inc.",
        "trader",
        "Los Angeles",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    "busan-customs-brokers": (
        "Busan Customs Brokers",
        "customs_broker",
        "Busan",
        {"admin": ("admin",), "clerk": ("trader",)},
    ),
    # --- Sejong microgrid prosumers ---
    "sejong-solar-coop": (
        "Sejong Community Solar Cooperative",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
    "sejong-school-3": (
        "Sejong Dodam Elementary School",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
    "sejong-library": (
        "Sejong National Library Annex",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
    "sejong-apt-101": (
        "Hansol Apartments Block 101",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
    "sejong-home-7": (
        "Household 7, Areum-dong",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
    "sejong-home-12": (
        "Household 12, Jongchon-dong",
        "prosumer",
        "Sejong",
        {"admin": ("admin",), "owner": ("prosumer",)},
    ),
}

# Registered during the demo by a founding agency (identity.register_org).
NEW_ORG = (
    "incheon-forwarders",
    "Incheon Forwarders & Brokers",
    "customs_broker",
    "Incheon",
    {"admin": ("admin",), "clerk": ("trader",)},
)

RESTRICTED_HS_CODES = ["2903", "3601", "9302", "9303"]

# (hs code, description, UN/ECE Rec 20 unit, value per unit in minor units)
GOODS_BY_ORIGIN: dict[str, list[tuple[str, str, str, int]]] = {
    "CN": [
        ("850760", "Lithium-ion battery packs", "C62", 18_500),
        ("847130", "Portable computers", "C62", 42_000),
        ("610910", "Cotton T-shirts, knitted", "C62", 350),
        ("940360", "Wooden office furniture", "C62", 9_900),
        ("854140", "Photovoltaic modules", "C62", 11_000),
    ],
    "NL": [
        ("040690", "Gouda cheese", "KGM", 900),
        ("220300", "Beer made from malt", "LTR", 220),
        ("060110", "Tulip bulbs, dormant", "KGM", 450),
    ],
    "DE": [
        ("847989", "Industrial machinery parts", "C62", 65_000),
        ("870899", "Motor vehicle parts", "C62", 4_800),
    ],
    "SG": [("271019", "Lubricating oils", "LTR", 310), ("390110", "Polyethylene", "KGM", 140)],
    "US": [("100199", "Wheat", "KGM", 30), ("847149", "Server systems", "C62", 250_000)],
    "JP": [("870323", "Passenger cars, 1500-3000 cc", "C62", 2_100_000)],
    "KR": [
        ("854232", "Memory integrated circuits", "C62", 3_200),
        ("870323", "Passenger cars, 1500-3000 cc", "C62", 2_400_000),
        ("721049", "Galvanised steel sheet", "KGM", 95),
        ("330499", "Skin-care preparations", "C62", 1_400),
    ],
}
RESTRICTED_GOODS = ("290371", "Chlorodifluoromethane (HCFC-22) refrigerant", "KGM", 1_200)
CURRENCY = {"CN": "USD", "NL": "EUR", "DE": "EUR", "SG": "USD", "US": "USD", "JP": "JPY"}

# Import lanes into Busan: origin -> (consignor, ocean carrier, transit days)
IMPORT_LANES: list[tuple[str, str, str, int]] = [
    ("CNSHA", "shanghai-trading", "korea-ocean-lines", 2),
    ("CNNGB", "shanghai-trading", "pacific-feeder", 3),
    ("NLRTM", "rotterdam-foods", "korea-ocean-lines", 30),
    ("DEHAM", "rotterdam-foods", "korea-ocean-lines", 33),
    ("SGSIN", "shanghai-trading", "pacific-feeder", 6),
    ("USLAX", "la-machinery", "korea-ocean-lines", 14),
    ("JPTYO", "la-machinery", "pacific-feeder", 2),
]
# Export lanes out of Busan: destination -> (consignee, ocean carrier, transit days)
EXPORT_LANES: list[tuple[str, str, str, int]] = [
    ("USLAX", "la-machinery", "korea-ocean-lines", 14),
    ("NLRTM", "rotterdam-foods", "korea-ocean-lines", 30),
    ("CNSHA", "shanghai-trading", "pacific-feeder", 2),
    ("USLGB", "la-machinery", "pacific-feeder", 15),
]
IMPORTERS = ["hanbit-electronics", "sejong-agritech"]
# Container owner prefixes (fictional BIC codes) per carrier.
CONTAINER_OWNERS = {"korea-ocean-lines": "KOLU", "pacific-feeder": "PFSU"}

PROSUMER_METERS: dict[str, tuple[int, int]] = {
    # org -> (meters, typical Wh produced per meter per 15 min around noon)
    "sejong-solar-coop": (2, 9_000),
    "sejong-school-3": (1, 4_000),
    "sejong-library": (1, 3_000),
    "sejong-apt-101": (1, 600),
    "sejong-home-7": (1, 250),
    "sejong-home-12": (1, 150),
}
SELLERS = ["sejong-solar-coop", "sejong-school-3", "sejong-library"]
BUYERS = ["sejong-apt-101", "sejong-home-7", "sejong-home-12"]

# Permits: (id, type, holder, applicant member, address, description, final status)
PERMITS: list[tuple[str, str, str, str, str, str, str]] = [
    (
        "BSN-BLD-0001",
        "building",
        "hanbit-electronics",
        "clerk",
        "45 Centum jungang-ro, Haeundae-gu, Busan",
        "Four-storey R&D building with rooftop solar",
        "issued",
    ),
    (
        "BSN-BLD-0002",
        "building",
        "busan-haulage",
        "ops",
        "12 Sinseon-ro, Nam-gu, Busan",
        "Truck maintenance depot",
        "in_review",
    ),
    (
        "BSN-BUS-0003",
        "business",
        "korea-ocean-lines",
        "ops",
        "1 Chungjang-daero, Jung-gu, Busan",
        "Ship agency office",
        "approved",
    ),
    (
        "BSN-EVT-0004",
        "event",
        "busan-haulage",
        "ops",
        "Busan North Port Pier 1",
        "Truckers' open day with 3,000 visitors",
        "denied",
    ),
    (
        "BSN-BUS-0005",
        "business",
        "pacific-feeder",
        "ops",
        "88 Jungang-daero, Dong-gu, Busan",
        "Container freight station",
        "suspended",
    ),
    (
        "BSN-BLD-0006",
        "building",
        "hanbit-electronics",
        "clerk",
        "9 Gijang-daero, Gijang-gun, Busan",
        "Warehouse mezzanine",
        "revoked",
    ),
    (
        "BSN-BUS-0007",
        "business",
        "busan-customs-brokers",
        "clerk",
        "21 Chungjang-daero, Jung-gu, Busan",
        "Customs brokerage office",
        "expired",
    ),
    (
        "BSN-BLD-0008",
        "building",
        "pacific-feeder",
        "ops",
        "3 Gamcheonhang-ro, Saha-gu, Busan",
        "Reefer plug tower",
        "applied",
    ),
    (
        "SJG-BLD-0001",
        "building",
        "sejong-solar-coop",
        "owner",
        "100 Hannuri-daero, Sejong",
        "Solar carport, 400 kWp",
        "issued",
    ),
    (
        "SJG-EVT-0002",
        "event",
        "sejong-school-3",
        "owner",
        "Sejong Lake Park",
        "School energy fair",
        "issued",
    ),
    (
        "SJG-BLD-0003",
        "building",
        "sejong-agritech",
        "clerk",
        "55 Jiphyeonjungang-ro, Sejong",
        "Vertical farm greenhouse",
        "in_review",
    ),
    (
        "LIC-HCFC-0001",
        "import_licence",
        "hanbit-electronics",
        "clerk",
        "45 Centum jungang-ro, Haeundae-gu, Busan",
        "Import licence for HCFC refrigerants (Montreal Protocol quota)",
        "issued",
    ),
    (
        "LIC-AGRI-0002",
        "import_licence",
        "sejong-agritech",
        "clerk",
        "55 Jiphyeonjungang-ro, Sejong",
        "Import licence for controlled substances in fumigants",
        "issued",
    ),
]
