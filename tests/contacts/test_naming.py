"""What a contact is called where no name is known."""

from __future__ import annotations

from crm.contacts.naming import contact_label


def test_a_name_wins_then_a_handle_never_a_phone_or_wechat_id() -> None:
    handle = ("platform_handle", "xiaohongshu:小鹿妈妈")
    private = [("phone", "+8613800000000"), ("wechat_id", "wxid_abc")]
    assert contact_label("王小明", [handle, *private]) == "王小明"
    assert contact_label(None, [*private, handle]) == "xiaohongshu:小鹿妈妈"
    assert contact_label("  ", [handle]) == "xiaohongshu:小鹿妈妈"
    assert contact_label(None, private) == ""
