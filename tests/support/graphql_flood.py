"""Flood a site's GraphQL from a process of its own (an attacker is not in
the site's process, and in the test's it would take the GIL the site needs):

    python -m tests.support.graphql_flood URL TOKEN THREADS

sends the doubling-fragments document from THREADS threads until stdin closes.
"""
import json
import sys
import threading
import urllib.request

from tests.test_request_limits import doubling_fragments


def main() -> None:
    url, token, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    body = json.dumps({"query": doubling_fragments(23)}).encode()
    stop = threading.Event()

    def attack() -> None:
        while not stop.is_set():
            request = urllib.request.Request(url + "/api/graphql", data=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except OSError:
                pass

    workers = [threading.Thread(target=attack, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    print("flooding", flush=True)
    sys.stdin.read()
    stop.set()


if __name__ == "__main__":
    main()
