def test_smoke(service):
    assert service.get("u1") is None
    s = service.step_to("u1", slug="hello->say_hello")
    assert s.slug == "hello->say_hello" and s.version == 1 and s.previous is None
    s = service.step_to("u1", state="ask_name")
    assert s.previous == "hello->say_hello" and s.version == 2
    assert service.get("u1") == s
    assert service.count_by_state() == {"hello->ask_name": 1}
    print(service.history("u1"))
    print(service.list_sessions())
    s = service.step_to("u1", slug="hello->old_name")
    assert s.slug == "goodbye->say_bye"
    assert service.reset("u1")
    assert service.get("u1") is None
    assert service.count_by_state() == {}
