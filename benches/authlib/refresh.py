"""One refresh round trip with Authlib's AsyncOAuth2Client, timed per call.

Run by host's refresh bench (`cargo bench -p host --bench refresh`), which serves the token
endpoint on 127.0.0.1 and compares the median with its native flow's, measured the same way in
the same run. It can also be run by hand against any token endpoint that accepts the refresh
token again; the two secrets come from the environment, not the command line (where `ps` would
show them):

    REFRESH_TOKEN=... CLIENT_SECRET=... python refresh.py TOKEN_URL CLIENT_ID ROUNDS

It prints one JSON object: the median and quartiles of `authlib` (AsyncOAuth2Client.refresh_token,
the client secret sent in the form as the native flow sends it) and of `httpx` (the same POST
with the client Authlib uses underneath, its answer parsed as JSON: Authlib's own share is the
difference), in microseconds.
"""

import asyncio
import json
import os
import statistics
import sys
import time

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

WARM_UP = 200


def summary(samples):
    q = statistics.quantiles(samples, n=4)
    return {"median_us": statistics.median(samples), "q1_us": q[0], "q3_us": q[2]}


async def timed(call, rounds):
    for _ in range(WARM_UP):
        await call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def main(token_url, refresh_token, client_id, client_secret, rounds):
    async with AsyncOAuth2Client(
        client_id,
        client_secret,
        token_endpoint=token_url,
        token_endpoint_auth_method="client_secret_post",
        trust_env=False,
    ) as client:

        async def authlib_refresh():
            token = await client.refresh_token(token_url, refresh_token=refresh_token)
            assert token.get("access_token"), "the answer has no access_token"

        authlib = await timed(authlib_refresh, rounds)

    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    async with httpx.AsyncClient(trust_env=False) as client:

        async def plain_post():
            response = await client.post(
                token_url, data=form, headers={"accept": "application/json"}
            )
            assert response.status_code == 200, response.status_code
            assert response.json().get("access_token"), "the answer has no access_token"

        plain = await timed(plain_post, rounds)

    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "rounds": rounds,
                "authlib": summary(authlib),
                "httpx": summary(plain),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 4 or not {"REFRESH_TOKEN", "CLIENT_SECRET"} <= os.environ.keys():
        sys.exit(__doc__)
    url, cid, n = sys.argv[1:]
    token, secret = os.environ["REFRESH_TOKEN"], os.environ["CLIENT_SECRET"]
    asyncio.run(main(url, token, cid, secret, int(n)))
