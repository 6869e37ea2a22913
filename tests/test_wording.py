from core.wording import counted


def test_a_count_of_one_is_singular_and_others_plural():
    assert counted(1, "event") == "1 event"
    assert counted(0, "event") == "0 events"
    assert counted(12_000, "label") == "12,000 labels"
    assert counted(2, "query", "queries") == "2 queries"
