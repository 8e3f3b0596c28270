#!/usr/bin/env python3
"""Builds the encoder-model fixtures of tests/fixtures/encoders/ with Hugging Face's own libraries.

usage: make_encoder_fixtures.py OUT_DIR
Needs torch, transformers, tokenizers and sentence-transformers (runs offline, CPU, float32).

OUT_DIR/tokenizers/{wordpiece,unigram,unigram_bytes,precompiled}/
    tokenizer.json   written by `tokenizers` (WordPiece: BERT-uncased style, trained here;
                     unigram: trained here, SentencePiece-style normalizer + Metaspace;
                     unigram_bytes: built from a vocabulary with byte_fallback;
                     precompiled: an XLM-R-style tokenizer from a SentencePiece model trained
                     with nmt_nfkc, when the sentencepiece package is installed)
    expected.json    {"cases": [{"text", "pair"?, "ids", "type_ids", "tokens", "offsets"
                     (code-point offsets into text, or into pair for the pair's tokens),
                     "sequence_ids", "decoded" (skip_special_tokens)}]}
OUT_DIR/<model>/     save_pretrained / SentenceTransformer.save output + expected.json:
    {"inputs": [{"text", "pair"?, "ids", "type_ids"}], "hidden": [[[f]]] (last hidden state),
     "pooler"?: [[f]], "logits"?: [[f]] or [[[f]]], "st_embeddings"?: [[f]] (texts only),
     "entities"?: pipeline("token-classification", aggregation_strategy="simple") per text}
"""
import inspect
import json
import os
import random
import shutil
import sys
import traceback

import torch

torch.set_num_threads(4)
torch.manual_seed(0)

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import (Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,  # noqa: E402
                        processors, trainers)

try:
    import sentence_transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
except Exception:  # noqa: BLE001
    sentence_transformers = None

try:
    from transformers import PreTrainedTokenizerFast as FastTokenizer
except Exception:  # noqa: BLE001
    from transformers import TokenizersBackend as FastTokenizer

OUT = sys.argv[1] if len(sys.argv) > 1 else "encoders"
FAILED = []


def f7(x):
    return float(f"{float(x):.7g}")


def tolist(t):
    if t.dim() == 0:
        return f7(t)
    return [tolist(x) for x in t]


def dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))


def step(name):
    """Runs one fixture builder; a failure is logged and the others still run."""
    def wrap(fn):
        def run(*a, **k):
            print(f"== {name}", flush=True)
            try:
                return fn(*a, **k)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                FAILED.append(name)
                return None
        return run
    return wrap


# ---------------------------------------------------------------- corpus
WORDS = ("the of and to in is was for on that with as by at from his her it an are were be this "
         "which or have has had not but all they their one you we there been more when who will "
         "would can said about into than them other time only new some could these two may first "
         "after most also made over did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make world "
         "still own see men work long get here between both life being under never day same another "
         "know while last might us great old year off come since against go came right used take "
         "three city country river bank capital France Paris London Berlin John Smith Mary Acme "
         "company Google apple banana running runner unbelievable tokenization embeddings encoder "
         "classifier question answer search retrieval document query model language transformer "
         "attention window sliding rotary position HELLO World Quick Brown Fox Jumps Lazy Dog").split()
EXTRA = ["café", "naïve", "Straße", "Grüße", "München", "Ελληνικά", "Русский", "中文", "测试",
         "你好", "世界", "日本語", "한국어", "déjà", "vu", "São", "Paulo", "Zürich", "Ça", "va",
         "1", "2", "3", "42", "2024", "3.14", "100%", "$5", "e-mail", "don't", "it's", "U.S.A."]
PUNCT = [".", ",", "!", "?", ";", ":", "(", ")", "-", "\"", "'"]


def corpus(n=3000, seed=7):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        k = rng.randint(3, 16)
        ws = []
        for _ in range(k):
            r = rng.random()
            w = rng.choice(EXTRA) if r < 0.12 else rng.choice(WORDS)
            if rng.random() < 0.1:
                w = w.capitalize()
            ws.append(w)
            if rng.random() < 0.1:
                ws.append(rng.choice(PUNCT))
        lines.append(" ".join(ws))
    return lines


TOKENIZER_TEXTS = [
    "", " ", "Hello world!", "Hello, World! HELLO world.", "The quick brown fox jumps over the lazy dog.",
    "unbelievable tokenization", "Grüße aus München! café naïve déjà vu", "ÀÉÎÕÜ àéîõü Ça va?",
    "中文测试：你好，世界！", "日本語のテキスト、こんにちは", "한국어 텍스트", "Ελληνικά Русский текст",
    "don't it's U.S.A. e-mail 100% $5 3.14", "  leading and trailing   ", "tabs\tand\nnewlines\r\nhere",
    "a" * 120, "x" * 99 + " " + "y" * 101, "zzqx qqzzv wubbalubba", "I love 🍕 and 🍣!",
    "\u0000control\u0007chars\u001b[0m", "zero\u200bwidth soft\u00adhyphen", "e\u0301 vs \u00e9",
    "ﬁ ﬂ ligatures ①②③ ｆｕｌｌ", "Paris is the capital of France.", "[CLS] [SEP] [MASK] <s> </s>",
    "John Smith lives in New York and works at Acme.", "what is the capital of france?",
    "   ", "multiple     spaces     inside", "MiXeD CaSe WoRdS", "punctuation!!! ??? ... ---",
    "numbers 1234567890 and 3,000,000.50", "email@example.com https://example.com/path?q=1",
]
# More cases for the SentencePiece-normalized (Precompiled) tokenizer.
NFKC_TEXTS = ["ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "① ™ ℃ ½ ㍿", "Å Å Å", "\u1100\u1161\u11a8 가각",
              "a\u00a0b\u3000c"]
PAIRS = [("what is the capital of france?", "Paris is the capital of France."),
         ("Hello", "world"), ("", "empty first"), ("Grüße", "中文测试")]


def tokenizer_cases(tok, extra=()):
    cases = []
    for text in TOKENIZER_TEXTS + list(extra):
        e = tok.encode(text, add_special_tokens=True)
        cases.append({"text": text, "ids": e.ids, "type_ids": e.type_ids, "tokens": e.tokens,
                      "offsets": [list(o) for o in e.offsets], "sequence_ids": e.sequence_ids,
                      "decoded": tok.decode(e.ids, skip_special_tokens=True)})
    for a, b in PAIRS:
        e = tok.encode(a, b, add_special_tokens=True)
        cases.append({"text": a, "pair": b, "ids": e.ids, "type_ids": e.type_ids, "tokens": e.tokens,
                      "offsets": [list(o) for o in e.offsets], "sequence_ids": e.sequence_ids,
                      "decoded": tok.decode(e.ids, skip_special_tokens=True)})
    return cases


def metaspace(cls):
    try:
        return cls(replacement="\u2581", prepend_scheme="always", split=True)
    except TypeError:
        return cls(replacement="\u2581", add_prefix_space=True)


def save_tokenizer(tok, d, name, extra=()):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    dump(os.path.join(d, "expected.json"), {"cases": tokenizer_cases(tok, extra)})
    print(name, "vocab", tok.get_vocab_size(), tok.encode("Hello world zzqx 中文 🍕").tokens, flush=True)


@step("wordpiece")
def build_wordpiece(lines):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=700, limit_alphabet=120,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        continuing_subword_prefix="##")
    tok.train_from_iterator(lines, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok.decoder = decoders.WordPiece(prefix="##")
    save_tokenizer(tok, os.path.join(OUT, "tokenizers", "wordpiece"), "wordpiece")
    return tok


@step("unigram")
def build_unigram(lines):
    tok = Tokenizer(models.Unigram())
    # SentencePieceUnigramTokenizer's normalizer without Nmt, which tokenizers.js (the corpus
    # parity reference) does not implement.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = metaspace(pre_tokenizers.Metaspace)
    tok.decoder = metaspace(decoders.Metaspace)
    trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                      unk_token="<unk>", max_piece_length=12)
    tok.train_from_iterator(lines, trainer)
    s, e = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", s), ("</s>", e)])
    save_tokenizer(tok, os.path.join(OUT, "tokenizers", "unigram"), "unigram")
    return tok


@step("unigram_bytes")
def build_unigram_bytes(uni):
    data = json.loads(uni.to_str())
    pieces = [p for p in data["model"]["vocab"] if p[0] not in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")]
    vocab = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0]]
    vocab += [[f"<0x{b:02X}>", 0.0] for b in range(256)]
    vocab += pieces[:500]
    model = models.Unigram([tuple(p) for p in vocab], unk_id=0, byte_fallback=True)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = metaspace(pre_tokenizers.Metaspace)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(), metaspace(decoders.Metaspace)])
    tok.add_special_tokens(["<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    save_tokenizer(tok, os.path.join(OUT, "tokenizers", "unigram_bytes"), "unigram_bytes")
    return tok


def read_spm_model(path):
    """The pieces and the normalizer spec of a SentencePiece ModelProto, read from the protobuf
    wire format directly (no protobuf package needed)."""
    data = open(path, "rb").read()

    def varint(buf, i):
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, i

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            num, wire = key >> 3, key & 7
            if wire == 0:
                v, i = varint(buf, i)
            elif wire == 1:
                v, i = buf[i:i + 8], i + 8
            elif wire == 2:
                n, i = varint(buf, i)
                v, i = buf[i:i + n], i + n
            elif wire == 5:
                v, i = buf[i:i + 4], i + 4
            else:
                raise ValueError("wire type %d" % wire)
            yield num, wire, v

    import struct
    pieces, charsmap = [], b""
    for num, wire, v in fields(data):
        if num == 1:
            piece, score, kind = "", 0.0, 1
            for n2, w2, v2 in fields(v):
                if n2 == 1:
                    piece = v2.decode("utf-8")
                elif n2 == 2:
                    score = struct.unpack("<f", v2)[0]
                elif n2 == 3:
                    kind = v2
            pieces.append((piece, score, kind))
        elif num == 3:
            for n2, w2, v2 in fields(v):
                if n2 == 2:
                    charsmap = bytes(v2)
    return pieces, charsmap


@step("precompiled")
def build_precompiled(lines):
    """An XLM-R-style tokenizer: a SentencePiece Unigram model trained with the nmt_nfkc rule,
    whose precompiled charsmap becomes tokenizers' Precompiled normalizer."""
    import sentencepiece as spm
    tmp = os.path.join(OUT, "_tmp_spm")
    os.makedirs(tmp, exist_ok=True)
    corpus_path = os.path.join(tmp, "corpus.txt")
    extra = TOKENIZER_TEXTS + NFKC_TEXTS + ["ﬁ ﬂ ① ② ③ ™ ℃ ½", "e\u0301 vs \u00e9",
                                            "한국어 텍스트 日本語のテキスト", "tab\tnew\nline"]
    with open(corpus_path, "w", encoding="utf-8") as f:
        for line in lines + [t for t in extra if t.strip()] * 3:
            f.write(line.replace("\n", " ") + "\n")
    prefix = os.path.join(tmp, "spm")
    spm.SentencePieceTrainer.train(input=corpus_path, model_prefix=prefix, vocab_size=600,
                                   model_type="unigram", normalization_rule_name="nmt_nfkc",
                                   character_coverage=0.9995, unk_id=3, bos_id=0, pad_id=1,
                                   eos_id=2, hard_vocab_limit=False)
    pieces, charsmap = read_spm_model(prefix + ".model")
    print("precompiled: %d pieces, charsmap %d bytes" % (len(pieces), len(charsmap)), flush=True)
    vocab = [(p, float(sc)) for p, sc, _ in pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = metaspace(pre_tokenizers.Metaspace)
    tok.decoder = metaspace(decoders.Metaspace)
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    save_tokenizer(tok, os.path.join(OUT, "tokenizers", "precompiled"), "precompiled", NFKC_TEXTS)
    shutil.rmtree(tmp)
    return tok


@step("bpe")
def build_bpe(lines):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    eos = tok.token_to_id("<|endoftext|>")
    # Qwen3-Embedding appends <|endoftext|> so that last-token pooling reads it.
    tok.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", eos)])
    print("bpe vocab", tok.get_vocab_size(), flush=True)
    return tok


def hf_tokenizer(tok, **special):
    # Only BERT takes token_type_ids; ModernBERT and Qwen3 would reject them.
    names = ["input_ids", "token_type_ids", "attention_mask"] if "cls_token" in special and \
        special["cls_token"] == "[CLS]" else ["input_ids", "attention_mask"]
    return FastTokenizer(tokenizer_object=tok, model_max_length=512, model_input_names=names, **special)


def randomize(model):
    # Default init leaves norms at 1 and biases at 0, which would hide bugs in those paths.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname.lower() and pname.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))


def encode_inputs(tok, texts, pairs=()):
    out = []
    for t in texts:
        e = tok.encode(t, add_special_tokens=True)
        out.append({"text": t, "ids": e.ids, "type_ids": e.type_ids})
    for a, b in pairs:
        e = tok.encode(a, b, add_special_tokens=True)
        out.append({"text": a, "pair": b, "ids": e.ids, "type_ids": e.type_ids})
    return out


def forward_all(model, inputs, use_types=True):
    """Per input (batch of one, no padding): the base model's last_hidden_state (after ModernBERT's
    and Qwen3's final norm), BertModel's pooler output, and the head's logits."""
    base = getattr(model, model.base_model_prefix, model)
    hidden, pooler, logits = [], [], []
    with torch.no_grad():
        for inp in inputs:
            ids = torch.tensor([inp["ids"]])
            kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if use_types:
                kw["token_type_ids"] = torch.tensor([inp["type_ids"]])
            bout = base(**kw)
            hidden.append(tolist(bout.last_hidden_state[0]))
            if base is model and getattr(bout, "pooler_output", None) is not None:
                pooler.append(tolist(bout.pooler_output[0]))
            if base is not model:
                logits.append(tolist(model(**kw).logits[0]))
    return hidden, pooler, logits


def save_model(model, tok, d, special):
    model.save_pretrained(d, safe_serialization=True)
    hf_tokenizer(tok, **special).save_pretrained(d)


def st_folder(tmp, d, pooling, normalize, texts):
    """Wraps the model saved in `tmp` as a sentence-transformers model saved to `d`; returns the
    embeddings of `texts` (one at a time, so no padding changes positions)."""
    if sentence_transformers is None:
        raise RuntimeError("sentence-transformers is not installed")
    tr = st_models.Transformer(tmp, max_seq_length=128)
    mods = [tr, st_models.Pooling(tr.get_word_embedding_dimension(), pooling_mode=pooling)]
    if normalize:
        mods.append(st_models.Normalize())
    st = SentenceTransformer(modules=mods, device="cpu")
    st.save(d)
    emb = st.encode(texts, batch_size=1, convert_to_tensor=True, normalize_embeddings=False)
    # Reload from the saved folder and check it gives the same vectors.
    st2 = SentenceTransformer(d, device="cpu")
    emb2 = st2.encode(texts, batch_size=1, convert_to_tensor=True)
    print("  st reload max diff", float((emb - emb2).abs().max()), flush=True)
    return tolist(emb)


BERT_SPECIAL = dict(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                    mask_token="[MASK]")
UNI_SPECIAL = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", cls_token="<s>", sep_token="</s>",
                   pad_token="<pad>", mask_token="<mask>")
TEXTS = ["Hello world!", "The quick brown fox jumps over the lazy dog near the river bank.",
         "Grüße aus München, café naïve 中文测试 and more words",
         "John Smith lives in Paris and works at Acme with Mary in London since 2024."]
LONG = ("the encoder reads a long sentence about sliding window attention and rotary position "
        "embeddings so that local layers see only their neighbours while global layers see all")
QA = [("what is the capital of france?", "Paris is the capital and largest city of France."),
      ("what is the capital of france?", "The quick brown fox jumps over the lazy dog.")]
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG"}
CLS_LABELS = {0: "negative", 1: "neutral", 2: "positive"}


def bert_config(vocab, **kw):
    from transformers import BertConfig
    return BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                      hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.2, pad_token_id=0, **kw)


@step("bert")
def build_bert(wp):
    from transformers import BertModel
    torch.manual_seed(11)
    model = BertModel(bert_config(wp.get_vocab_size())).eval()
    randomize(model)
    d, tmp = os.path.join(OUT, "bert"), os.path.join(OUT, "_tmp_bert")
    save_model(model, wp, tmp, BERT_SPECIAL)
    inputs = encode_inputs(wp, TEXTS, QA[:1])
    hidden, pooler, _ = forward_all(model, inputs)
    st = st_folder(tmp, d, "mean", True, TEXTS)
    shutil.rmtree(tmp)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "pooler": pooler,
                                            "st_pooling": "mean", "st_normalize": True, "st_embeddings": st})


@step("bert_cls")
def build_bert_cls(wp):
    from transformers import BertForSequenceClassification
    torch.manual_seed(12)
    cfg = bert_config(wp.get_vocab_size(), num_labels=3, id2label=CLS_LABELS,
                      label2id={v: k for k, v in CLS_LABELS.items()})
    model = BertForSequenceClassification(cfg).eval()
    randomize(model)
    d = os.path.join(OUT, "bert_cls")
    save_model(model, wp, d, BERT_SPECIAL)
    inputs = encode_inputs(wp, TEXTS, QA)
    hidden, _, logits = forward_all(model, inputs)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "logits": logits})


def ner_entities(model, hf_tok, texts):
    from transformers import pipeline
    pipe = pipeline("token-classification", model=model, tokenizer=hf_tok, aggregation_strategy="simple",
                    device=-1)
    out = []
    for t in texts:
        ents = pipe(t)
        out.append([{"entity_group": e["entity_group"], "score": f7(e["score"]), "word": e["word"],
                     "start": int(e["start"]), "end": int(e["end"])} for e in ents])
    return out


@step("bert_ner")
def build_bert_ner(wp):
    from transformers import BertForTokenClassification
    torch.manual_seed(13)
    cfg = bert_config(wp.get_vocab_size(), num_labels=len(NER_LABELS), id2label=NER_LABELS,
                      label2id={v: k for k, v in NER_LABELS.items()})
    model = BertForTokenClassification(cfg).eval()
    randomize(model)
    d = os.path.join(OUT, "bert_ner")
    save_model(model, wp, d, BERT_SPECIAL)
    inputs = encode_inputs(wp, TEXTS)
    hidden, _, logits = forward_all(model, inputs)
    res = {"inputs": inputs, "hidden": hidden, "logits": logits}
    try:
        res["entities"] = ner_entities(model, hf_tokenizer(wp, **BERT_SPECIAL), TEXTS)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    dump(os.path.join(d, "expected.json"), res)


@step("xlmr_rerank")
def build_xlmr(uni):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification
    torch.manual_seed(14)
    cfg = XLMRobertaConfig(vocab_size=uni.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, max_position_embeddings=66,
                           type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-5, initializer_range=0.2,
                           pad_token_id=uni.token_to_id("<pad>"), bos_token_id=uni.token_to_id("<s>"),
                           eos_token_id=uni.token_to_id("</s>"), num_labels=1)
    model = XLMRobertaForSequenceClassification(cfg).eval()
    randomize(model)
    d = os.path.join(OUT, "xlmr_rerank")
    save_model(model, uni, d, UNI_SPECIAL)
    inputs = encode_inputs(uni, TEXTS[:2], QA)
    hidden, _, logits = forward_all(model, inputs, use_types=False)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "logits": logits})


def modernbert_config(uni, **extra):
    from transformers import ModernBertConfig
    params = inspect.signature(ModernBertConfig.__init__).parameters
    kw = dict(vocab_size=uni.get_vocab_size(), hidden_size=32, intermediate_size=48, num_hidden_layers=3,
              num_attention_heads=4, max_position_embeddings=128, global_attn_every_n_layers=2,
              local_attention=8, norm_eps=1e-5, norm_bias=False, attention_bias=False, mlp_bias=False,
              hidden_activation="gelu", classifier_activation="gelu", initializer_range=0.2,
              global_rope_theta=160000.0, local_rope_theta=10000.0,
              pad_token_id=uni.token_to_id("<pad>"), bos_token_id=uni.token_to_id("<s>"),
              eos_token_id=uni.token_to_id("</s>"), cls_token_id=uni.token_to_id("<s>"),
              sep_token_id=uni.token_to_id("</s>"))
    if "rope_parameters" in params:
        kw["rope_parameters"] = {"full_attention": {"rope_type": "default", "rope_theta": 160000.0},
                                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
    kw.update(extra)
    cfg = ModernBertConfig(**kw)
    try:
        cfg._attn_implementation = "eager"
    except Exception:  # noqa: BLE001
        pass
    return cfg


MB_TEXTS = TEXTS + [LONG]


@step("modernbert")
def build_modernbert(uni):
    from transformers import ModernBertModel
    torch.manual_seed(21)
    cfg = modernbert_config(uni)
    print(cfg.to_json_string(), flush=True)
    model = ModernBertModel(cfg).eval()
    randomize(model)
    d, tmp = os.path.join(OUT, "modernbert"), os.path.join(OUT, "_tmp_modernbert")
    save_model(model, uni, tmp, UNI_SPECIAL)
    inputs = encode_inputs(uni, MB_TEXTS)
    hidden, _, _ = forward_all(model, inputs, use_types=False)
    st = st_folder(tmp, d, "cls", False, MB_TEXTS)
    shutil.rmtree(tmp)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "st_pooling": "cls",
                                            "st_normalize": False, "st_embeddings": st})


@step("modernbert_cls")
def build_modernbert_cls(uni):
    from transformers import ModernBertForSequenceClassification
    torch.manual_seed(22)
    cfg = modernbert_config(uni, num_labels=3, id2label=CLS_LABELS, label2id={v: k for k, v in CLS_LABELS.items()},
                            classifier_pooling="mean")
    model = ModernBertForSequenceClassification(cfg).eval()
    randomize(model)
    d = os.path.join(OUT, "modernbert_cls")
    save_model(model, uni, d, UNI_SPECIAL)
    inputs = encode_inputs(uni, MB_TEXTS, QA[:1])
    hidden, _, logits = forward_all(model, inputs, use_types=False)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "logits": logits})


@step("modernbert_ner")
def build_modernbert_ner(uni):
    from transformers import ModernBertForTokenClassification
    torch.manual_seed(23)
    cfg = modernbert_config(uni, num_labels=len(NER_LABELS), id2label=NER_LABELS,
                            label2id={v: k for k, v in NER_LABELS.items()})
    model = ModernBertForTokenClassification(cfg).eval()
    randomize(model)
    d = os.path.join(OUT, "modernbert_ner")
    save_model(model, uni, d, UNI_SPECIAL)
    inputs = encode_inputs(uni, MB_TEXTS)
    hidden, _, logits = forward_all(model, inputs, use_types=False)
    res = {"inputs": inputs, "hidden": hidden, "logits": logits}
    try:
        res["entities"] = ner_entities(model, hf_tokenizer(uni, **UNI_SPECIAL), MB_TEXTS)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    dump(os.path.join(d, "expected.json"), res)


@step("qwen3_embed")
def build_qwen3(bpe):
    from transformers import Qwen3Config, Qwen3Model
    torch.manual_seed(31)
    cfg = Qwen3Config(vocab_size=bpe.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                      rms_norm_eps=1e-6, rope_theta=1000000.0, initializer_range=0.2, tie_word_embeddings=True,
                      use_sliding_window=False, attention_bias=False,
                      bos_token_id=None, eos_token_id=bpe.token_to_id("<|endoftext|>"),
                      pad_token_id=bpe.token_to_id("<|endoftext|>"))
    model = Qwen3Model(cfg).eval()
    randomize(model)
    d, tmp = os.path.join(OUT, "qwen3_embed"), os.path.join(OUT, "_tmp_qwen3")
    save_model(model, bpe, tmp, dict(eos_token="<|endoftext|>", pad_token="<|endoftext|>", padding_side="left"))
    inputs = encode_inputs(bpe, TEXTS)
    hidden, _, _ = forward_all(model, inputs, use_types=False)
    st = st_folder(tmp, d, "lasttoken", True, TEXTS)
    shutil.rmtree(tmp)
    dump(os.path.join(d, "expected.json"), {"inputs": inputs, "hidden": hidden, "st_pooling": "lasttoken",
                                            "st_normalize": True, "st_embeddings": st})


def main():
    print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers",
          tokenizers.__version__, "sentence_transformers",
          getattr(sentence_transformers, "__version__", None), flush=True)
    os.makedirs(OUT, exist_ok=True)
    dump(os.path.join(OUT, "versions.json"), {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentence_transformers": getattr(sentence_transformers, "__version__", None)})
    lines = corpus()
    wp = build_wordpiece(lines)
    uni = build_unigram(lines)
    if uni is not None:
        build_unigram_bytes(uni)
    build_precompiled(lines)
    bpe = build_bpe(lines)
    if wp is not None:
        build_bert(wp)
        build_bert_cls(wp)
        build_bert_ner(wp)
    if uni is not None:
        build_xlmr(uni)
        build_modernbert(uni)
        build_modernbert_cls(uni)
        build_modernbert_ner(uni)
    if bpe is not None:
        build_qwen3(bpe)
    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f"{os.path.getsize(p):>9} {p}")
    print("FAILED:", FAILED if FAILED else "none", flush=True)


if __name__ == "__main__":
    main()
