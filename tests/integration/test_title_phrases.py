"""Title phrases on a real broker: a miscategorised cross-border batik shirt, decided by a worker
enforcing the bundled indonesia-cross-border set, goes to REVIEW with the phrase in the decision
read back from the topic."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.codec import AvroCodec
from consumer.core.records import Price
from consumer.kafka import client_conf
from tests.integration.conftest import Topics, start_worker
from tests.unit.listings import epoch_ms, make_listing
from tests.waiting import drain

pytestmark = pytest.mark.integration

CODEC = AvroCodec()
#: After the AKAR closure and Permendag 31/2023 began; USD 150 with an HS code, so only the
#: title screen has something to say about the miscategorised shirt.
BASE = make_listing(
    event_time_ms=epoch_ms("2024-05-03T03:00:00Z"),
    category_id="c-402",
    category_path=("Electronics", "Accessories"),
    price=Price(15_000, "USD"),
    hs_code="62052000",
)


class TestTitlePhrasesOnABroker:
    def test_a_miscategorised_batik_shirt_goes_to_review_with_its_phrase(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """ "Kemeja Batik Tulis Pria" under Electronics > Accessories: REVIEW, reason
        IMPORT_CLOSED_GOODS_IN_TITLE with phrase "batik"; an earbud listing beside it is
        APPROVED; a domestic batik shirt too."""
        s = topics.settings
        listings = {
            "batik": dataclasses.replace(BASE, event_id="e-batik", title="Kemeja Batik Tulis Pria"),
            "earbuds": dataclasses.replace(BASE, event_id="e-earbuds", title="Wireless Earbuds"),
            "domestic": dataclasses.replace(
                BASE,
                event_id="e-domestic",
                title="Kemeja Batik Tulis Pria",
                seller_country="ID",
                ship_from_country="ID",
            ),
        }
        producer = Producer(client_conf.plain_producer_conf(s))
        for i, listing in enumerate(listings.values()):
            producer.produce(s.input_topic, value=CODEC.encode_listing(listing), partition=i % 3)
        assert producer.flush(30) == 0

        worker = start_worker(
            topics,
            tmp_path,
            "--until-idle",
            "3",
            IMPORT_CLOSURE_POLICY="bundled:indonesia-cross-border",
        )
        assert worker.finish(120) == 0, worker.logs()[-3000:]

        records = drain(topics.client_conf(), s.approved_topic)
        if s.rejected_topic != s.approved_topic:
            records += drain(topics.client_conf(), s.rejected_topic)
        found = {d.event_id: d for d in (CODEC.decode_decision(r.value) for r in records)}
        assert set(found) == {"e-batik", "e-earbuds", "e-domestic"}
        batik = found["e-batik"]
        assert batik.outcome == "REVIEW"
        assert batik.policy == "indonesia-cross-border"
        assert [(r.code, r.rule_id, r.phrase) for r in batik.reasons] == [
            ("IMPORT_CLOSED_GOODS_IN_TITLE", "akar-closed-goods-in-title", "batik")
        ]
        assert batik.cluster is None
        assert found["e-earbuds"].outcome == "APPROVED"
        assert found["e-domestic"].outcome == "APPROVED"
