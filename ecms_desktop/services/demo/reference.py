"""The demo's fixed reference material: the three selling companies (their states and the mix of
customer kinds each sells to), real cities with ZIP and area codes, the names, trades and streets the
customers are made of, their signers' titles, the business type and exempt reason of each kind of
customer, and the mix the certificates are drawn with (review states, statuses, rejection and archive
reasons, product and commodity codes).
"""

from __future__ import annotations

from typing import Any

from ecms_desktop.models import ReviewState, Status

COMPANIES: tuple[dict[str, Any], ...] = (
    {"name": "Northwind Industrial Supply", "legal_name": "Northwind Industrial Supply, Inc.",
     "address_line1": "4100 Lakeside Parkway", "address_line2": "Suite 300", "city": "Columbus", "state": "OH",
     "postal_code": "43215", "reply_to_email": "exemptions@northwind-supply.example.com",
     "brand_color": "#1F4E79", "share": 0.7,
     "states": ("OH", "TX", "CA", "NY", "FL", "PA", "IL", "GA", "KY", "MI", "WA", "NC", "IN", "KS", "MO",
                "AZ", "CO", "TN", "WI", "MN", "NJ", "VA", "MD", "MA", "CT", "AL", "LA", "OK", "UT", "NV"),
     "kinds": {"reseller": 46, "manufacturer": 16, "nonprofit": 7, "religious": 3, "educational": 7,
               "government": 11, "farm": 3, "direct_pay": 4, "other": 3}},
    {"name": "Northwind Pacific Distribution", "legal_name": "Northwind Pacific Distribution LLC",
     "address_line1": "1250 Harbor Boulevard", "address_line2": "", "city": "Sacramento", "state": "CA",
     "postal_code": "95814", "reply_to_email": "tax@northwind-pacific.example.com", "brand_color": "#2E7D32",
     "share": 0.2,
     "states": ("CA", "WA", "NV", "AZ", "UT", "HI", "ID", "NM", "CO", "TX"),
     "kinds": {"reseller": 52, "manufacturer": 14, "nonprofit": 6, "religious": 2, "educational": 8,
               "government": 12, "farm": 4, "direct_pay": 1, "other": 1}},
    {"name": "Prairie Ag & Farm Supply", "legal_name": "Prairie Ag & Farm Supply Co.",
     "address_line1": "800 Grand Avenue", "address_line2": "", "city": "Des Moines", "state": "IA",
     "postal_code": "50309", "reply_to_email": "certificates@prairie-ag.example.com", "brand_color": "#8D6E63",
     "share": 0.1,
     "states": ("IA", "NE", "KS", "SD", "ND", "MN", "MO", "IL", "WI", "IN"),
     "kinds": {"farm": 48, "reseller": 24, "manufacturer": 9, "government": 8, "educational": 5,
               "nonprofit": 4, "religious": 1, "other": 1}},
)

#: (city, state, ZIP, area code, county)
CITIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Birmingham", "AL", "35203", "205", "Jefferson"), ("Huntsville", "AL", "35801", "256", "Madison"),
    ("Phoenix", "AZ", "85004", "602", "Maricopa"), ("Tucson", "AZ", "85701", "520", "Pima"),
    ("Little Rock", "AR", "72201", "501", "Pulaski"), ("Fayetteville", "AR", "72701", "479", "Washington"),
    ("Los Angeles", "CA", "90012", "213", "Los Angeles"), ("Fresno", "CA", "93721", "559", "Fresno"),
    ("San Diego", "CA", "92101", "619", "San Diego"), ("Oakland", "CA", "94612", "510", "Alameda"),
    ("Sacramento", "CA", "95814", "916", "Sacramento"), ("Denver", "CO", "80202", "303", "Denver"),
    ("Colorado Springs", "CO", "80903", "719", "El Paso"), ("Hartford", "CT", "06103", "860", "Hartford"),
    ("New Haven", "CT", "06510", "203", "New Haven"), ("Washington", "DC", "20001", "202", "District"),
    ("Wilmington", "DE", "19801", "302", "New Castle"), ("Miami", "FL", "33130", "305", "Miami-Dade"),
    ("Tampa", "FL", "33602", "813", "Hillsborough"), ("Orlando", "FL", "32801", "407", "Orange"),
    ("Jacksonville", "FL", "32202", "904", "Duval"), ("Atlanta", "GA", "30303", "404", "Fulton"),
    ("Savannah", "GA", "31401", "912", "Chatham"), ("Honolulu", "HI", "96813", "808", "Honolulu"),
    ("Boise", "ID", "83702", "208", "Ada"), ("Chicago", "IL", "60606", "312", "Cook"),
    ("Peoria", "IL", "61602", "309", "Peoria"), ("Springfield", "IL", "62701", "217", "Sangamon"),
    ("Indianapolis", "IN", "46204", "317", "Marion"), ("Fort Wayne", "IN", "46802", "260", "Allen"),
    ("Des Moines", "IA", "50309", "515", "Polk"), ("Cedar Rapids", "IA", "52401", "319", "Linn"),
    ("Wichita", "KS", "67202", "316", "Sedgwick"), ("Topeka", "KS", "66603", "785", "Shawnee"),
    ("Louisville", "KY", "40202", "502", "Jefferson"), ("Lexington", "KY", "40507", "859", "Fayette"),
    ("New Orleans", "LA", "70112", "504", "Orleans"), ("Baton Rouge", "LA", "70801", "225", "East Baton Rouge"),
    ("Portland", "ME", "04101", "207", "Cumberland"), ("Baltimore", "MD", "21202", "410", "Baltimore City"),
    ("Boston", "MA", "02110", "617", "Suffolk"), ("Worcester", "MA", "01608", "508", "Worcester"),
    ("Detroit", "MI", "48226", "313", "Wayne"), ("Grand Rapids", "MI", "49503", "616", "Kent"),
    ("Minneapolis", "MN", "55401", "612", "Hennepin"), ("St. Cloud", "MN", "56301", "320", "Stearns"),
    ("Jackson", "MS", "39201", "601", "Hinds"), ("Kansas City", "MO", "64106", "816", "Jackson"),
    ("St. Louis", "MO", "63101", "314", "St. Louis City"), ("Billings", "MT", "59101", "406", "Yellowstone"),
    ("Omaha", "NE", "68102", "402", "Douglas"), ("Lincoln", "NE", "68508", "402", "Lancaster"),
    ("Las Vegas", "NV", "89101", "702", "Clark"), ("Reno", "NV", "89501", "775", "Washoe"),
    ("Manchester", "NH", "03101", "603", "Hillsborough"), ("Newark", "NJ", "07102", "973", "Essex"),
    ("Trenton", "NJ", "08608", "609", "Mercer"), ("Albuquerque", "NM", "87102", "505", "Bernalillo"),
    ("New York", "NY", "10007", "212", "New York"), ("Buffalo", "NY", "14202", "716", "Erie"),
    ("Albany", "NY", "12207", "518", "Albany"), ("Charlotte", "NC", "28202", "704", "Mecklenburg"),
    ("Raleigh", "NC", "27601", "919", "Wake"), ("Fargo", "ND", "58102", "701", "Cass"),
    ("Columbus", "OH", "43215", "614", "Franklin"), ("Cleveland", "OH", "44113", "216", "Cuyahoga"),
    ("Cincinnati", "OH", "45202", "513", "Hamilton"), ("Oklahoma City", "OK", "73102", "405", "Oklahoma"),
    ("Tulsa", "OK", "74103", "918", "Tulsa"), ("Portland", "OR", "97204", "503", "Multnomah"),
    ("Philadelphia", "PA", "19107", "215", "Philadelphia"), ("Pittsburgh", "PA", "15222", "412", "Allegheny"),
    ("Providence", "RI", "02903", "401", "Providence"), ("Columbia", "SC", "29201", "803", "Richland"),
    ("Charleston", "SC", "29401", "843", "Charleston"), ("Sioux Falls", "SD", "57104", "605", "Minnehaha"),
    ("Nashville", "TN", "37203", "615", "Davidson"), ("Memphis", "TN", "38103", "901", "Shelby"),
    ("Houston", "TX", "77002", "713", "Harris"), ("Dallas", "TX", "75201", "214", "Dallas"),
    ("Austin", "TX", "78701", "512", "Travis"), ("San Antonio", "TX", "78205", "210", "Bexar"),
    ("Lubbock", "TX", "79401", "806", "Lubbock"), ("Salt Lake City", "UT", "84111", "801", "Salt Lake"),
    ("Burlington", "VT", "05401", "802", "Chittenden"), ("Richmond", "VA", "23219", "804", "Richmond City"),
    ("Norfolk", "VA", "23510", "757", "Norfolk City"), ("Seattle", "WA", "98104", "206", "King"),
    ("Spokane", "WA", "99201", "509", "Spokane"), ("Charleston", "WV", "25301", "304", "Kanawha"),
    ("Milwaukee", "WI", "53202", "414", "Milwaukee"), ("Madison", "WI", "53703", "608", "Dane"),
    ("Cheyenne", "WY", "82001", "307", "Laramie"), ("Anchorage", "AK", "99501", "907", "Anchorage"),
)

SURNAMES = ("Anderson", "Baker", "Castillo", "Delgado", "Ellison", "Fairbanks", "Garrison", "Hartley",
             "Iverson", "Jamison", "Kowalski", "Lindqvist", "Morrison", "Nakamura", "Okafor", "Pritchard",
             "Quintero", "Rasmussen", "Schaefer", "Thornton", "Underwood", "Valdez", "Whitfield", "Yamamoto",
             "Zielinski", "Brennan", "Caldwell", "Donnelly", "Everett", "Fitzgerald", "Gallagher", "Holloway",
             "McAllister", "Novak", "Osborne", "Petrovic", "Reyes", "Sullivan", "Tran", "Vaughn", "Weston")
FIRST_NAMES = ("Maria", "James", "Linda", "Robert", "Patricia", "Michael", "Jennifer", "David", "Elizabeth",
          "William", "Susan", "Carlos", "Aisha", "Daniel", "Karen", "Thomas", "Nancy", "Kevin", "Priya", "Brian",
          "Laura", "Steven", "Grace", "Anthony", "Rachel", "Marcus", "Olivia", "Hector", "Mei", "Samuel", "Dana")
PLACES = ("Riverside", "Lakeshore", "Summit", "Heartland", "Bluegrass", "Cascade", "Gulf Coast", "Piedmont",
           "Prairie", "Redwood", "Sierra", "Tri-County", "Keystone", "Great Lakes", "Mesa", "Blue Ridge",
           "Golden Valley", "Pine Ridge", "Harbor", "Frontier", "Big Sky", "Ozark", "Chesapeake", "Canyon")
TRADES = (("Electrical Wholesale", "Wholesale distributor of electrical supplies",
            "Wire, conduit, breakers, lighting fixtures and fittings for resale"),
           ("Plumbing Supply", "Plumbing and HVAC parts distributor",
            "Pipe, valves, fittings, water heaters and HVAC parts for resale"),
           ("Hardware & Lumber", "Retail hardware store and lumber yard",
            "Hand and power tools, fasteners, lumber and building materials for resale"),
           ("Office Products", "Office supply retailer", "Paper, toner, office furniture and supplies for resale"),
           ("Auto Parts", "Automotive parts retailer", "Replacement parts, filters, fluids and batteries for resale"),
           ("Janitorial Supply", "Distributor of cleaning and sanitation products",
            "Cleaning chemicals, paper products and janitorial equipment for resale"),
           ("Safety Products", "Industrial safety equipment distributor",
            "Gloves, eyewear, hard hats and protective clothing for resale"),
           ("Restaurant Supply", "Food service equipment dealer",
            "Commercial kitchen equipment, smallwares and disposables for resale"),
           ("Marine & Outdoor", "Marine and outdoor equipment retailer",
            "Boat parts, outdoor gear and accessories for resale"),
           ("Industrial Distributors", "Industrial MRO distributor",
            "Bearings, power transmission parts, fasteners and tools for resale"))
MFG = (("Precision Machining", "Contract machining of metal parts",
         "Cutting tools, coolant and machine parts consumed directly in manufacturing"),
        ("Plastics", "Injection-molded plastic components manufacturer",
         "Resin, molds and production machinery used directly in manufacturing"),
        ("Packaging Corp.", "Corrugated packaging manufacturer",
         "Production machinery, adhesives and materials that become part of the product"),
        ("Fabrication Works", "Structural steel fabrication",
         "Welding wire, gases and equipment used directly in fabrication"),
        ("Foods", "Food processing plant", "Processing equipment and ingredients used in production"),
        ("Circuit Technologies", "Printed circuit board assembly",
         "Components and production equipment used directly in manufacturing"))
SAINTS = ("St. Mark's", "St. Anne's", "Trinity", "Grace", "St. Paul's", "Holy Cross", "Bethel", "Zion",
           "St. Luke's", "Emmanuel")
SUFFIX_BIZ = ("LLC", "Inc.", "Co.", "Corp.", "LP", "Inc.", "LLC")
STREETS = ("Commerce Dr", "Industrial Pkwy", "Main St", "Market St", "Oak Ave", "Elm St", "Maple Ave",
            "Warehouse Rd", "Enterprise Blvd", "Airport Rd", "Railroad Ave", "Mill St", "Lakeview Dr",
            "Riverside Dr", "Highway 30", "County Road 12", "Distribution Way", "Technology Dr", "Harbor Blvd",
            "Jefferson St", "Washington Ave", "Lincoln Way", "Center St", "Park Ave", "Broadway")

KIND_REASON = {"reseller": "resale", "manufacturer": "manufacturing", "nonprofit": "nonprofit",
                "religious": "religious", "educational": "educational", "government": "government",
                "farm": "agricultural", "direct_pay": "direct_pay", "other": "other"}
KIND_BUSINESS_TYPE = {"reseller": "Wholesale trade", "manufacturer": "Manufacturing",
                       "nonprofit": "Charitable organization", "religious": "Religious organization",
                       "educational": "Educational services", "government": "Government",
                       "farm": "Agriculture, forestry, fishing, hunting", "direct_pay": "Utilities",
                       "other": "Information, publishing and communications"}
TITLES = {"reseller": ("Purchasing Manager", "Owner", "Controller", "Buyer", "President"),
           "manufacturer": ("Plant Controller", "Procurement Manager", "CFO", "Tax Manager"),
           "nonprofit": ("Executive Director", "Treasurer", "Operations Manager"),
           "religious": ("Pastor", "Church Administrator", "Treasurer"),
           "educational": ("Business Manager", "Purchasing Agent", "Superintendent"),
           "government": ("Procurement Officer", "Finance Director", "Purchasing Agent"),
           "farm": ("Owner", "Partner", "Farm Manager"),
           "direct_pay": ("Director of Tax", "Tax Manager"),
           "other": ("Controller", "Tax Analyst", "Office Manager")}
REJECT_REASONS = ("Not signed by the purchaser.",
                   "The permit number does not match the state's format; asked the customer for a corrected "
                   "certificate.",
                   "The purchaser's name differs from the customer's legal name on the account.",
                   "The description of the purchaser's business is missing.",
                   "Form not accepted for this exemption reason in this state.",
                   "Illegible scan: the permit number cannot be read.")
ARCHIVE_REASONS = ("Superseded by a renewed certificate.", "Customer account closed.",
                    "Customer sold the business; the new owner must provide its own certificate.",
                    "Replaced by a multistate SST certificate.", "Duplicate of another certificate on file.")
REVIEW_WEIGHTS = ((ReviewState.APPROVED.value, 87), (ReviewState.PENDING.value, 6),
                   (ReviewState.REJECTED.value, 3), (ReviewState.ARCHIVED.value, 4))
APPROVED_TARGETS = ((Status.ACTIVE, 70), (Status.EXPIRING_SOON, 9), (Status.EXPIRED, 21))
#: The first certificates take every status in turn, so that even a tiny demo shows each one.
FIRST_TARGETS = (Status.ACTIVE, Status.EXPIRING_SOON, Status.EXPIRED, Status.PENDING_REVIEW, Status.REJECTED,
                  Status.ARCHIVED)
PRODUCT_CODES = ("NW-FAST-100", "NW-TOOL-220", "NW-ELEC-310", "NW-SAFE-415", "NW-PACK-520", "NW-CHEM-610",
                  "NW-MRO-705", "NW-HVAC-812")
#: UNSPSC commodity classes.
COMMODITY_CODES = ("31161500", "27111700", "39121000", "46181500", "24112400", "47131800", "40141700",
                    "23271400", "10171500", "21101500")
