"""Lexicon files and tolerant matching of transcripts, zh and en."""

import pytest

from audio_classifier.errors import ConfigError
from audio_classifier.lexicon import Lexicon, find, segment, units


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


@pytest.mark.parametrize(
    "transcript,label",
    [
        ("您 拨打 的 号码 是 空号 请 查证 后 再 拨", "vacant"),  # Vosk's spaced words
        ("您拨打的电话已关机", "powered_off"),
        ("您拨打的电话已停机", "suspended"),
        ("您拨打的电话暂时无法接通，请稍后再拨", "unreachable"),  # 无法接通 outranks 请稍后再拨
        ("请稍后再拨", "redial_later"),
        ("您拨打的电话正在通话钟", "busy"),  # homophone 钟/中
        ("您拨打的号码是空好", "vacant"),  # homophone 好/号
        ("您拨打的电话已关鸡", "powered_off"),  # homophone 鸡/机
        ("您拨打的号码不纯在请稍后再拨", "vacant"),  # one wrong character, still outranks
        ("您拨打的用户正在通话请稍后再拨", "busy"),  # one missing character
        ("您拨打的用户暂时无法接通，我们将以短信的形式通知对方您来过电话", "call_reminder"),
        ("对不起，网络忙，请稍后再拨", "network_busy"),
        ("您的账户余额不足", "line_fault"),
        ("Sorry, the number you dialed does not exist, please check it", "vacant"),
        ("SORRY ALL CIRCUITS ARE BUSSY NOW", "network_busy"),  # one wrong word in four
        ("the subscriber you dialed is busy now please redial later", "busy"),
        ("the number you dialed has been suspended", "suspended"),
        ("please leave a message after the tone", "voicemail"),
        ("hello who is this", "human"),
    ],
)
def test_matching(lexicon, transcript, label):
    match = lexicon.match(transcript)
    assert match is not None and match.entry.label == label, match


@pytest.mark.parametrize(
    "transcript", ["今天天气很好", "the weather is nice today", "", "，。", "does not exit"]
)
def test_no_false_matches(lexicon, transcript):
    assert lexicon.match(transcript) is None


def test_short_phrases_need_exact_matches(lexicon):
    assert lexicon.match("关鸡") is not None  # homophones are exact for this purpose
    assert lexicon.match("关") is None


@pytest.mark.parametrize("transcript", ["号码位数不对，请核对后重新拨号", "呼叫转移未能成功", "为您转接"])
def test_a_one_character_phrase_matches_only_itself(lexicon, transcript):
    # 喂 (human) sounds like 位, 未 and 为: an announcement is no person answering
    match = lexicon.match(transcript)
    assert match is None or match.entry.label != "human", match
    assert lexicon.match("喂，您好").entry.label == "human"


def test_approximate_search():
    assert find(units("空号"), units("您拨打的号码是空号"), 0) == (0, 9)
    assert find(units("无法接通"), units("暂时无法借通"), 0)[0] == 0  # 借/接: same toneless pinyin
    assert find(units("无法接通"), units("暂时无法连通"), 1)[0] == 1
    assert find(units("无法接通"), units("暂时无法"), 0) is None


def test_builtin_files_are_consistent(lexicon):
    assert lexicon.check() == []
    assert {"zh", "en"} <= set(lexicon.languages())
    labels = {e.label for e in lexicon.entries}
    assert {"vacant", "suspended", "powered_off", "busy", "redial_later"} <= labels


def test_added_folder_and_conflicts(tmp_path):
    (tmp_path / "zh.tsv").write_text(
        "# extra carrier wording\nported\t95\t已携转\nbusy\t80\t空号\n", encoding="utf-8"
    )
    lexicon = Lexicon.load([tmp_path])
    assert lexicon.match("您拨打的用户已携转").entry.label == "ported"
    problems = lexicon.check()
    assert len(problems) == 1 and problems[0].startswith("conflict: '空号'")


@pytest.mark.parametrize(
    "line,message",
    [
        ("vacant\t100", "expected label<TAB>priority<TAB>phrase"),
        ("vacnt\t100\t空号", "unknown label 'vacnt'"),
        ("vacant\thigh\t空号", "priority must be an integer"),
        ("vacant\t100\t，", "empty phrase"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    (tmp_path / "zh.tsv").write_text(f"# header\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        Lexicon.load([tmp_path])
    assert "zh.tsv:2" in str(info.value)


def test_segmentation_into_model_words():
    vocabulary = {
        "您",
        "拨打",
        "的",
        "号码",
        "是",
        "空号",
        "请",
        "查证",
        "后",
        "再",
        "拨",
        "does",
        "not",
        "exist",
    }
    words, missing = segment("您拨打的号码是空号", vocabulary.__contains__)
    assert words == ["您", "拨打", "的", "号码", "是", "空号"] and missing == []
    words, missing = segment("号码已改号", vocabulary.__contains__)
    assert missing == ["已", "改", "号"]
    assert segment("Does not exist", vocabulary.__contains__) == (["does", "not", "exist"], [])
