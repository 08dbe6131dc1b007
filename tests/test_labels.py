from audio_classifier.labels import LABEL_IDS, LABELS, get_label

EXPECTED = """
vacant 空号 invalid remove
number_changed 改号 invalid remove
ported 已转网 invalid remove
wrong_number_format 拨号方式不正确 invalid review
suspended 停机 inactive suppress
barred 呼入限制 refused suppress
rejected 用户拒接 refused retry_later
powered_off 关机 unavailable retry_later
unreachable 无法接通 unavailable retry_later
no_answer 无人接听 unavailable retry_later
call_reminder 来电提醒 unavailable retry_later
forwarding_failed 呼叫转移失败 unavailable retry_later
redial_later 稍后再拨 unavailable retry_later
busy 正在通话中 busy retry_soon
busy_tone 忙音 busy retry_soon
network_busy 网络忙 network_issue retry_soon
congestion_tone 拥塞音 network_issue retry_soon
line_fault 线路故障 caller_issue check_trunk
sit 特殊信息音 unknown review
ringback 回铃音 reachable keep
color_ringback 彩铃 reachable keep
voicemail 语音信箱 reachable keep
human 人工接听 reachable keep
fax 传真 non_voice remove
silence 静音 unknown retry_later
unknown 未知 unknown review
"""


def test_taxonomy_is_exactly_the_specified_table():
    rows = [line.split() for line in EXPECTED.strip().splitlines()]
    assert list(LABEL_IDS) == [r[0] for r in rows]
    for label_id, zh, state, action in rows:
        label = LABELS[label_id]
        assert (label.zh, label.number_state, label.action) == (zh, state, action)
        assert label.en


def test_unknown_label_error_lists_valid_ids():
    try:
        get_label("nope")
    except KeyError as exc:
        assert "vacant" in str(exc) and "unknown" in str(exc)
    else:
        raise AssertionError("expected KeyError")
