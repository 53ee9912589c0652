"""Sample source databases for the local demo and the tests.

A slice of the classic `world` sample (country / city / countrylanguage) in an
Aurora PostgreSQL cluster, and a small shop in a MySQL instance. Column types
follow what an RDS export writes for each engine: PostgreSQL numerics and
dates arrive as strings, MySQL DECIMAL as decimal and DATETIME as timestamps.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

COUNTRIES = [
    # code, name, continent, region, surface area km2, independence year, population, life expectancy, capital city id
    ("NLD", "Netherlands", "Europe", "Western Europe", "41526.00", 1581, 15864000, "78.3", 5),
    ("DEU", "Germany", "Europe", "Western Europe", "357022.00", 1955, 82164700, "77.4", 3068),
    ("FRA", "France", "Europe", "Western Europe", "551500.00", 843, 59225700, "78.8", 2974),
    ("ESP", "Spain", "Europe", "Southern Europe", "505992.00", 1492, 39441700, "78.8", 653),
    ("ITA", "Italy", "Europe", "Southern Europe", "301316.00", 1861, 57680000, "79.0", 1464),
    ("GBR", "United Kingdom", "Europe", "British Islands", "242900.00", 1066, 59623400, "77.7", 456),
    ("JPN", "Japan", "Asia", "Eastern Asia", "377829.00", -660, 126714000, "80.7", 1532),
    ("BRA", "Brazil", "South America", "South America", "8547403.00", 1822, 170115000, "62.9", 211),
    ("USA", "United States", "North America", "North America", "9363520.00", 1776, 278357000, "77.1", 3813),
    ("KEN", "Kenya", "Africa", "Eastern Africa", "580367.00", 1963, 30080000, "48.0", 1881),
    ("AUS", "Australia", "Oceania", "Australia and New Zealand", "7741220.00", 1901, 18886000, "79.8", 135),
    ("ATA", "Antarctica", "Antarctica", "Antarctica", "13120000.00", None, 0, None, None),
]

CITIES = [
    (5, "Amsterdam", "NLD", "Noord-Holland", 731200),
    (6, "Rotterdam", "NLD", "Zuid-Holland", 593321),
    (7, "Haag", "NLD", "Zuid-Holland", 440900),
    (8, "Utrecht", "NLD", "Utrecht", 234323),
    (3068, "Berlin", "DEU", "Berliini", 3386667),
    (3069, "Hamburg", "DEU", "Hamburg", 1704735),
    (3070, "Munich [München]", "DEU", "Baijeri", 1194560),
    (2974, "Paris", "FRA", "Île-de-France", 2125246),
    (2975, "Marseille", "FRA", "Provence-Alpes-Côte", 798430),
    (2976, "Lyon", "FRA", "Rhône-Alpes", 445452),
    (653, "Madrid", "ESP", "Madrid", 2879052),
    (654, "Barcelona", "ESP", "Katalonia", 1503451),
    (655, "Valencia", "ESP", "Valencia", 739412),
    (1464, "Roma", "ITA", "Latium", 2643581),
    (1465, "Milano", "ITA", "Lombardia", 1300977),
    (1466, "Napoli", "ITA", "Campania", 1002619),
    (456, "London", "GBR", "England", 7285000),
    (457, "Birmingham", "GBR", "England", 1013000),
    (458, "Glasgow", "GBR", "Scotland", 619680),
    (1532, "Tokyo", "JPN", "Tokyo-to", 7980230),
    (1533, "Jokohama [Yokohama]", "JPN", "Kanagawa", 3339594),
    (1534, "Osaka", "JPN", "Osaka", 2595674),
    (206, "São Paulo", "BRA", "São Paulo", 9968485),
    (207, "Rio de Janeiro", "BRA", "Rio de Janeiro", 5598953),
    (211, "Brasília", "BRA", "Distrito Federal", 1969868),
    (3793, "New York", "USA", "New York", 8008278),
    (3794, "Los Angeles", "USA", "California", 3694820),
    (3795, "Chicago", "USA", "Illinois", 2896016),
    (3813, "Washington", "USA", "District of Columbia", 572059),
    (1881, "Nairobi", "KEN", "Nairobi", 2290000),
    (1882, "Mombasa", "KEN", "Coast", 461753),
    (130, "Sydney", "AUS", "New South Wales", 3276207),
    (131, "Melbourne", "AUS", "Victoria", 2865329),
    (135, "Canberra", "AUS", "Capital Region", 322723),
]

LANGUAGES = [
    ("NLD", "Dutch", True, "95.6"),
    ("NLD", "Fries", False, "3.7"),
    ("NLD", "Turkish", False, "0.8"),
    ("DEU", "German", True, "91.3"),
    ("DEU", "Turkish", False, "2.6"),
    ("DEU", "Italian", False, "0.7"),
    ("FRA", "French", True, "93.6"),
    ("FRA", "Arabic", False, "2.5"),
    ("FRA", "Portuguese", False, "1.2"),
    ("ESP", "Spanish", True, "74.4"),
    ("ESP", "Catalan", False, "16.9"),
    ("ESP", "Galecian", False, "6.4"),
    ("ITA", "Italian", True, "94.1"),
    ("ITA", "Sardinian", False, "2.7"),
    ("GBR", "English", True, "97.3"),
    ("GBR", "Gaeli", False, "0.1"),
    ("GBR", "Kymri", False, "0.9"),
    ("JPN", "Japanese", True, "99.1"),
    ("JPN", "Korean", False, "0.5"),
    ("BRA", "Portuguese", True, "97.5"),
    ("BRA", "German", False, "0.5"),
    ("USA", "English", True, "86.2"),
    ("USA", "Spanish", False, "7.5"),
    ("KEN", "Kikuyu", False, "20.9"),
    ("KEN", "Swahili", True, "0.0"),
    ("KEN", "Luhya", False, "13.8"),
    ("AUS", "English", True, "81.2"),
    ("AUS", "Italian", False, "2.2"),
]


def world_postgres_tables() -> dict[str, Any]:
    """Export folders (`schema.table`) of the Aurora PostgreSQL `world` database."""
    import pyarrow as pa

    country = pa.table(
        {
            "code": [c[0] for c in COUNTRIES],
            "name": [c[1] for c in COUNTRIES],
            "continent": [c[2] for c in COUNTRIES],
            "region": [c[3] for c in COUNTRIES],
            # PostgreSQL numeric is exported as a string (precision and NaN safe).
            "surfacearea": pa.array([c[4] for c in COUNTRIES], pa.string()),
            "indepyear": pa.array([c[5] for c in COUNTRIES], pa.int32()),
            "population": pa.array([c[6] for c in COUNTRIES], pa.int32()),
            "lifeexpectancy": pa.array([c[7] for c in COUNTRIES], pa.string()),
            "capital": pa.array([c[8] for c in COUNTRIES], pa.int32()),
        }
    )
    city = pa.table(
        {
            "id": pa.array([c[0] for c in CITIES], pa.int32()),
            "name": [c[1] for c in CITIES],
            "countrycode": [c[2] for c in CITIES],
            "district": [c[3] for c in CITIES],
            "population": pa.array([c[4] for c in CITIES], pa.int32()),
        }
    )
    language = pa.table(
        {
            "countrycode": [lang[0] for lang in LANGUAGES],
            "language": [lang[1] for lang in LANGUAGES],
            "isofficial": [lang[2] for lang in LANGUAGES],
            "percentage": pa.array([lang[3] for lang in LANGUAGES], pa.string()),
        }
    )
    invoice_lines = pa.table(
        {
            "invoice_id": pa.array([1001, 1001, 1002], pa.int64()),
            "line_no": pa.array([1, 2, 1], pa.int16()),
            "amount": pa.array(["19.99", "5.00", "120.50"], pa.string()),
            # PostgreSQL timestamps are exported as strings too.
            "created_at": ["2024-05-01 09:12:00+00", "2024-05-01 09:12:00+00", "2024-05-01 17:40:31+00"],
        }
    )
    return {"public.country": country, "public.city": city, "public.countrylanguage": language, "sales.Invoice_Lines": invoice_lines}


def shop_mysql_tables() -> dict[str, Any]:
    """Export folders (`database.table`) of the MySQL `shop` database."""
    import pyarrow as pa

    customers = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "email": ["ana@example.com", "bo@example.com", "chen@example.com", "dee@example.com"],
            "country": ["ESP", "NLD", "JPN", "KEN"],
            "created_at": pa.array(
                [datetime(2023, 1, 5, 10, 0), datetime(2023, 3, 9, 8, 30), datetime(2023, 7, 21, 22, 5), datetime(2024, 2, 2, 12, 0)],
                pa.timestamp("us"),
            ),
        }
    )
    orders = pa.table(
        {
            "id": pa.array(range(1, 11), pa.int64()),
            "customer_id": pa.array([1, 2, 1, 3, 4, 2, 2, 3, 1, 4], pa.int64()),
            "total": pa.array(
                [Decimal(x) for x in ("10.50", "99.99", "5.00", "1200.00", "42.42", "7.10", "15.00", "250.75", "3.33", "18.00")],
                pa.decimal128(10, 2),
            ),
            "ordered_at": pa.array([datetime(2024, 4, d, 12, 0) for d in range(1, 11)], pa.timestamp("us")),
        }
    )
    return {"shop.customers": customers, "shop.orders": orders}


def orders_items(start: int = 1, count: int = 12) -> list[dict[str, Any]]:
    """DynamoDB items (boto3 client format) of a typical orders table: nested maps, sets, lists,
    exact decimals, binary, NULL, and attribute names that need cleaning up for Athena."""
    items = []
    for n in range(start, start + count):
        item: dict[str, Any] = {
            "pk": {"S": f"ORDER#{n:05d}"},
            "sk": {"S": "HEADER"},
            "date": {"S": f"2024-05-{n % 28 + 1:02d}"},
            "Order Total": {"N": f"{n * 17}.{n % 100:02d}"},
            "quantity": {"N": str(n % 7 + 1)},
            "Display-Name": {"S": f"Customer {n}"},
            "paid": {"BOOL": n % 3 != 0},
            "customer": {
                "M": {
                    "id": {"N": str(1000 + n)},
                    "address": {"M": {"city": {"S": ["Amsterdam", "Nairobi", "Osaka", "Lyon"][n % 4]}, "zip": {"S": f"{n:04d}"}}},
                }
            },
            "tags": {"SS": sorted({"new", "priority" if n % 2 else "standard"})},
            "lines": {"L": [{"M": {"sku": {"S": f"SKU-{n}"}, "qty": {"N": "1"}}}, {"S": "gift-wrap"}]},
            "coupon": {"NULL": True} if n % 4 == 0 else {"S": f"C{n}"},
            "signature": {"B": f"sig-{n}".encode()},  # boto3 takes raw bytes for B
        }
        if n % 5 == 0:
            item["exact_amount"] = {"N": "12345678901234567890.123456789012345678"}
        items.append(item)
    return items
