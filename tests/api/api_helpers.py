"""Helpers of the API tests (links of responses, walking pages)."""

from __future__ import annotations


def next_link(doc: dict) -> str | None:
    """The href of the 'next' link of a response, relative to the test server."""
    for link in doc.get("links", []):
        if link["rel"] == "next":
            return link["href"].replace("http://testserver", "")
    return None


def link(doc: dict, rel: str) -> str | None:
    for lk in doc.get("links", []):
        if lk["rel"] == rel:
            return lk["href"].replace("http://testserver", "")
    return None


def walk(client, url: str, max_pages: int = 10_000) -> tuple[list, list[dict]]:
    """Follow 'next' links from ``url``; return the feature ids and the pages."""
    ids, pages = [], []
    while url and len(pages) < max_pages:
        r = client.get(url)
        assert r.status_code == 200, r.text
        doc = r.json()
        pages.append(doc)
        ids += [f["id"] for f in doc["features"]]
        url = next_link(doc)
    return ids, pages
