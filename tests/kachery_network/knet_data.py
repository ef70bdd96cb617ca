"""Constants shared by the kachery network tests."""

from __future__ import annotations

from kachery_flows._retry import RetryPolicy

#: Alice's API key: a member who may upload to "default" and read/write "lab".
API_KEY = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
#: Mallory's key: a registered user with no rights on "default" or "lab".
OUTSIDER_KEY = "ZyXwVuTsRqPoNmLkJiHgFeDcBa987654"
#: Fast retries: many attempts, tiny waits, a bound on the total.
FAST = RetryPolicy(
    max_attempts=5,
    total_seconds=30.0,
    initial_delay=0.01,
    max_delay=0.05,
    budget_variable="KACHERY_NETWORK_RETRY_SECONDS",
)

# Keys and signatures from shared/reference/kachery.md section 6 (made with kachery-cloud).
VECTOR_PRIVATE_KEY = "6a8ec152223fc8ccc0c441ee99805adf327d43f6ce3545197a4ecc1bc4f4497d"
VECTOR_CLIENT_ID = "db60e2a85331560fc78bb504c0a248e0c0d40ad70898ae029f30a3834ae75e6f"
VECTOR_PRIVATE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIGqOwVIiP8jMwMRB7pmAWt8yfUP2zjVFGXpOzBvE9El9\n"
    "-----END PRIVATE KEY-----"
)
VECTOR_PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA22DiqFMxVg/Hi7UEwKJI4MDUCtcImK4CnzCjg0rnXm8=\n"
    "-----END PUBLIC KEY-----"
)
