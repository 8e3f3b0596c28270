// GPT-2's byte-level alphabet: every byte maps to one printable character ('Ġ' for ' ', 'Ċ' for
// '\n', printable ASCII to itself) so that byte-level BPE vocabularies are plain strings.
//
// Pure functions over constant tables: safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace turbine::tokenizer {

// UTF-8 of the character byte `b` maps to.
std::string_view byte_level_char(uint8_t b);

// Maps each byte of `bytes` to its character.
void byte_level_encode(std::string_view bytes, std::string& out);

// Maps characters back to bytes. Characters outside the alphabet keep their own UTF-8 bytes (as
// the Rust decoder does). `text` must be well-formed UTF-8.
std::string byte_level_decode(std::string_view text);

}  // namespace turbine::tokenizer
