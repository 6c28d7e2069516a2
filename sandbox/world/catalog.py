"""The simulated company's static catalogue: plans, support tiers, currencies, subsidiaries, names.

The mismatch rules of ARCHITECTURE.md lean on these facts (e.g. plan → support tier), so the dbt project
reads the same values from its vars; keep them in step.
"""

from __future__ import annotations

# plan -> (support tier, monthly list price in USD major units)
PLANS = {"starter": ("standard", 49), "growth": ("premium", 199), "enterprise": ("enterprise", 999)}
PLAN_WEIGHTS = {"starter": 0.5, "growth": 0.35, "enterprise": 0.15}
TIERS = ("basic", "standard", "premium", "enterprise")  # ascending; `basic` is the unpaid tier
DOWNGRADE_TIER = "basic"  # delinquent past the grace period, or no live subscription

# currency -> (weight, minor-unit exponent, rate to USD list price, NetSuite subsidiary id)
CURRENCIES = {
    "usd": (0.55, 2, 1.0, "1"),
    "eur": (0.25, 2, 0.92, "2"),
    "gbp": (0.12, 2, 0.79, "3"),
    "jpy": (0.08, 0, 150.0, "4"),  # zero-decimal: Stripe 1500 means ¥1500, not ¥15.00
}
SUBSIDIARIES = {
    "1": ("Revsync Demo Inc. (US)", "usd"),
    "2": ("Revsync Demo GmbH (EU)", "eur"),
    "3": ("Revsync Demo Ltd (UK)", "gbp"),
    "4": ("Revsync Demo KK (JP)", "jpy"),
}
LEGAL_SUFFIX = {"usd": "Inc.", "eur": "GmbH", "gbp": "Ltd", "jpy": "K.K."}
ANNUAL_MONTHS = 10  # an annual price is ten months of the monthly one

# Business rules (ARCHITECTURE.md; dbt vars with the same defaults).
HOUR = 3600
DAY = 24 * HOUR
SYNC_SLA = 24 * HOUR
GRACE_PERIOD = 14 * DAY
ONBOARDING_SLA = 7 * DAY
ARR_TOLERANCE = 0.01
THRESHOLDS = (SYNC_SLA, GRACE_PERIOD, ONBOARDING_SLA)
MARGIN = HOUR  # no injected age lies within an hour of a threshold

MONTH = 30 * DAY + 10 * HOUR  # 30.4 days: one billing month
YEAR = 365 * DAY

ADJECTIVES = (
    "Able Amber Apex Arctic Azure Bold Bright Brisk Calm Cedar Clear Clever Cobalt Coral Crisp Crystal "
    "Daring Deep Eager Early Echo Elder Ember Even Fair Fast Fern Fine Firm First Fleet Fresh Frost "
    "Gentle Giant Glad Gold Grand Granite Great Green Happy Hardy Harbor High Honest Iron Ivory Jade "
    "Jolly Keen Kind Lake Lark Laser Lively Lofty Loyal Lucky Lunar Maple Merry Mighty Mint Misty Modern "
    "Noble North Nova Oak Ocean Olive Onyx Open Orbit Pale Pearl Pine Pioneer Plain Polar Prime Proud "
    "Pure Quick Quiet Rapid Red Regal River Robust Rocky Royal Ruby Rust Sage Scarlet Secure Sharp "
    "Silver Simple Smart Snow Solar Solid Sonic Spark Spring Steady Steel Stone Storm Summit Sun Swift "
    "Tall Terra True Twin Union Urban Valley Velvet Vivid Warm West Wild Wise Zen"
).split()
NOUNS = (
    "Anchor Arrow Atlas Badger Beacon Bear Birch Bison Bloom Bolt Bridge Brook Canyon Cardinal Castle "
    "Cliff Cloud Comet Compass Condor Cove Crane Creek Crest Crown Dawn Delta Dune Eagle Field Finch "
    "Flame Forest Forge Fox Garden Gate Glacier Grove Hawk Heron Hill Horizon Island Jaguar Kestrel "
    "Lantern Leaf Lion Lotus Lynx Maple Meadow Mesa Meteor Mill Moon Moose Mountain Nest Oasis Orca "
    "Otter Owl Panther Path Peak Pebble Pelican Pier Pilot Planet Pond Prairie Quail Quarry Rain "
    "Ranger Raven Reef Ridge Rise Rock Rose Sail Shore Signal Sky Slope Sparrow Spire Spruce Star "
    "Stream Summit Swan Thistle Thunder Tide Tiger Timber Tower Trail Tree Tulip Valley Vine Vista "
    "Wave Willow Wind Wolf Wren Yard Zebra Zephyr Acorn Basin Cedar Harbor Falcon Marble"
).split()
INDUSTRIES = (
    "Analytics Apparel Biotech Brands Capital Cloud Consulting Designs Devices Dynamics Energy "
    "Engineering Foods Freight Games Goods Health Holdings Hospitality Imaging Industries Insights "
    "Labs Learning Legal Logistics Machines Media Medical Metrics Mobility Motors Networks Optics "
    "Partners Payments Pharma Photonics Power Printing Products Realty Recruiting Research Retail "
    "Robotics Security Sensors Software Solutions Sports Studios Supply Systems Technologies Telecom "
    "Textiles Therapeutics Tools Trading Transit Travel Ventures Vision Water Wellness Works Yachts "
    "Agency Aviation Bakery Brewing Builders Cargo Chemicals Clinics Coffee Data Dental Fitness "
    "Gaming Genomics Kitchens Marine Mining Outdoors Packaging Pets Plastics Robotics Storage Textiles"
).split()
FIRST_NAMES = (
    "Ana Ben Chloe Dev Emma Farah Gus Hana Ivan Jade Kofi Lena Marco Nia Omar Pia Quinn Ravi Sara Tom".split()
)
LAST_NAMES = (
    "Ahn Berg Costa Diaz Evans Fischer Garcia Haas Ito Jensen Kim Lopez Meyer Novak Ortiz Patel".split()
)
TICKET_SUBJECTS = (
    "Cannot log in",
    "Invoice question",
    "Feature request: export",
    "API rate limit",
    "SSO setup",
    "Billing address change",
    "Data import failed",
    "Slow dashboard",
)


def unique_words(words: list[str]) -> list[str]:
    """Words de-duplicated in first-seen order (the vocab above repeats a few)."""
    return list(dict.fromkeys(words))


ADJECTIVES = unique_words(ADJECTIVES)
NOUNS = [noun for noun in unique_words(NOUNS) if noun not in ADJECTIVES]
INDUSTRIES = unique_words(INDUSTRIES)
NAME_SPACE = len(ADJECTIVES) * len(NOUNS) * len(INDUSTRIES)


def company_name(index: int) -> tuple[str, str]:
    """A unique (display name, domain) for company `index` (0-based, < NAME_SPACE).

    Mixed-radix over three word lists, after a multiplicative shuffle so neighbours look unrelated.
    """
    if not 0 <= index < NAME_SPACE:
        raise ValueError(f"company index {index} exceeds the {NAME_SPACE} names available")
    shuffled = (index * 7_919_993) % NAME_SPACE  # the multiplier is prime and does not divide NAME_SPACE
    rest, industry = divmod(shuffled, len(INDUSTRIES))
    adjective, noun = divmod(rest, len(NOUNS))
    words = (ADJECTIVES[adjective], NOUNS[noun], INDUSTRIES[industry])
    return " ".join(words), "-".join(w.lower() for w in words) + ".com"
