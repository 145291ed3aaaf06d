"""Parsing of storage URLs (`file://`, `s3://`) into object stores; no server is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.objects import FileObjectStore, S3ObjectStore, object_path, open_object_store

SECRET = "S3cr3tPa55w0rd"
KEY = "0123456789abcdef" * 4


def test_file_url_opens_a_directory_store() -> None:
    store = open_object_store("file:///var/lib/telemed/objects")
    assert isinstance(store, FileObjectStore)
    assert store.root == Path("/var/lib/telemed/objects")
    assert store.path_of(KEY) == Path(f"/var/lib/telemed/objects/01/23/{KEY}")


def test_file_url_accepts_localhost_and_percent_encoding() -> None:
    store = open_object_store("file://localhost/srv/object%20store")
    assert isinstance(store, FileObjectStore)
    assert store.root == Path("/srv/object store")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("file://relative/path", "empty host"),
        ("file:///", "absolute directory"),
        ("file:///srv/../etc", r"\.\. segments"),
        ("file:///srv/objects?mode=fast", "no query"),
    ],
)
def test_bad_file_urls_say_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        open_object_store(url)


def test_s3_url_opens_a_bucket_store_with_prefix_and_options() -> None:
    store = open_object_store(
        f"s3://AKIAEXAMPLE:{SECRET}@minio.internal:9000/telemed/county/objects"
        "?secure=false&region=cn-north-1"
    )
    assert isinstance(store, S3ObjectStore)
    assert store.endpoint == "minio.internal:9000"
    assert store.bucket == "telemed"
    assert store.prefix == "county/objects"
    assert store.secure is False
    assert store.region == "cn-north-1"
    assert store.object_name(KEY) == f"county/objects/{object_path(KEY)}"
    assert repr(store) == "S3ObjectStore(http://minio.internal:9000/telemed/county/objects)"


def test_s3_url_defaults_to_https_and_no_prefix() -> None:
    store = open_object_store(f"s3://AK:{SECRET}@s3.example.org:443/objects")
    assert isinstance(store, S3ObjectStore)
    assert store.secure is True
    assert store.region is None
    assert store.prefix == ""
    assert store.object_name(KEY) == f"01/23/{KEY}"


def test_s3_url_credentials_are_percent_decoded_and_never_shown() -> None:
    # Cloud secrets often hold "/" and "+", which must be percent-encoded in a URL.
    store = open_object_store("s3://AK:abc%2Fdef%2Bghi@[::1]:9000/objects?secure=false")
    assert isinstance(store, S3ObjectStore)
    assert store.endpoint == "[::1]:9000"
    assert "abc" not in repr(store)
    assert "def" not in repr(store)


BAD_S3_URLS = [
    (f"s3://{SECRET}@host:9000/bucket", "ACCESS:SECRET"),
    (f"s3://AK:@host:9000/bucket{SECRET}", "ACCESS:SECRET"),
    ("s3://host:9000/bucket", "needs credentials"),
    (f"s3://AK:{SECRET}@host/bucket", "explicit port"),
    (f"s3://AK:{SECRET}@host:99999/bucket", "port must be"),
    (f"s3://AK:{SECRET}@host:90a0/bucket", "port must be"),
    (f"s3://AK:{SECRET}@ho_st:9000/bucket", "host must be"),
    (f"s3://AK:{SECRET}@[::1/bucket", "host:port"),
    (f"s3://AK:{SECRET}@host:9000", "needs a bucket"),
    (f"s3://AK:{SECRET}@host:9000/", "needs a bucket"),
    (f"s3://AK:{SECRET}@host:9000/Bad_Bucket", "bucket name"),
    (f"s3://AK:{SECRET}@host:9000/ab", "bucket name"),
    (f"s3://AK:{SECRET}@host:9000/bucket/a//b", "prefix"),
    (f"s3://AK:{SECRET}@host:9000/bucket/../x", "prefix"),
    (f"s3://AK:{SECRET}@host:9000/bucket?secure=maybe", "secure= must be"),
    (f"s3://AK:{SECRET}@host:9000/bucket?secur=false", "only secure= and region="),
    (f"s3://AK:{SECRET}@host:9000/bucket?secure=false&secure=true", "twice"),
    (f"s3://AK:{SECRET}@host:9000/bucket?secure", "name=value"),
    (f"s3://AK:{SECRET}@host:9000/bucket?region=Not A Region", "region="),
    (f"s3://AK:{SECRET}@host:9000/bucket#frag", "no fragment"),
    # Unencoded "/", "?" and "#" in the secret cut the URL in the wrong place.
    ("s3://AK:S3cr3t/Pa55w0rd@host:9000/bucket", "needs credentials"),
    ("s3://AK:S3cr3t?Pa55w0rd@host:9000/bucket", "needs credentials"),
    ("s3://AK:S3cr3t#Pa55w0rd@host:9000/bucket", "no fragment"),
    (f"http://AK:{SECRET}@host:9000/bucket", "scheme is not supported"),
    (f"{SECRET}://AK@host:9000/bucket", "scheme is not supported"),
    (f"AK:{SECRET}@host:9000/bucket", "must start with"),
    ("", "must start with"),
]


@pytest.mark.parametrize(("url", "complaint"), BAD_S3_URLS)
def test_bad_s3_urls_name_the_problem_and_never_the_secret(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        open_object_store(url)
    fragments = {SECRET, "S3cr3t", "Pa55w0rd"}
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    for link in chain:
        for text in (str(link), repr(link)):
            assert not any(f in text for f in fragments), text


def test_s3_store_rejects_a_bad_bucket_name_directly() -> None:
    with pytest.raises(ValueError, match="bucket name"):
        S3ObjectStore(endpoint="h:1", access_key="a", secret_key="b", bucket="UPPER")


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "a" * 64 + "/"])
def test_object_path_rejects_anything_but_a_sha256_hex(key: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        object_path(key)
