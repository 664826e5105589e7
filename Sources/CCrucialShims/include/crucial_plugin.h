#ifndef CRUCIAL_PLUGIN_H
#define CRUCIAL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

/// The plugin ABI: how crucial-server calls the @Shared types of a shared library
/// built from a user's package. Only C types cross it, so the plugin's copies of the
/// Crucial modules never meet the server's. Values travel as protobuf-encoded
/// `crucial.Value` messages (Protocol/crucial.proto).
/// 2: adds each type's fingerprint and method names.
#define CRUCIAL_PLUGIN_ABI_VERSION 2

/// The symbol a plugin exports: `crucial_plugin *crucial_plugin_entry(void)`.
#define CRUCIAL_PLUGIN_ENTRY "crucial_plugin_entry"

/// Bytes owned by whoever filled them; release with `free_buffer`.
typedef struct crucial_buffer {
    uint8_t *_Nullable data;
    size_t length;
} crucial_buffer;

typedef struct crucial_plugin {
    uint32_t abi_version;
    /// The clang version string of the Swift toolchain that built the plugin.
    const char *_Nonnull toolchain;
    uint32_t type_count;
    /// Wire names of the types, `type_count` of them.
    const char *_Nonnull const *_Nonnull type_names;

    /// A new object of type `type_index` from its encoded state; NULL on failure, with
    /// `*error` holding "CODE message" (CODE: a crucial.ErrorCode number).
    void *_Nullable (*_Nonnull create)(uint32_t type_index, const uint8_t *_Nullable state, size_t length,
                                       crucial_buffer *_Nonnull error);
    /// Runs `method` with `args` (an encoded list Value). Returns 0 and the encoded
    /// result in `*out`, or an error code and its UTF-8 message in `*out`.
    int32_t (*_Nonnull invoke)(void *_Nonnull object, const char *_Nonnull method, const uint8_t *_Nullable args,
                               size_t length, crucial_buffer *_Nonnull out);
    /// The object's encoded state in `*out`; 0, or an error code and message.
    int32_t (*_Nonnull snapshot)(void *_Nonnull object, crucial_buffer *_Nonnull out);
    /// 1 if `method` of type `type_index` only reads its object.
    int32_t (*_Nonnull is_read_only)(uint32_t type_index, const char *_Nonnull method);
    void (*_Nonnull destroy)(void *_Nonnull object);
    void (*_Nonnull free_buffer)(crucial_buffer *_Nonnull buffer);
    /// Each type's `SharedType.crucialFingerprint` (16 hex digits, or empty), `type_count` of them.
    const char *_Nonnull const *_Nonnull type_fingerprints;
    /// Each type's shipped methods: wire names, each followed by a newline, `type_count` of them.
    const char *_Nonnull const *_Nonnull type_methods;
} crucial_plugin;

/// The clang version of the toolchain that compiled this code (`__clang_version__`):
/// it names the Swift toolchain, so a server refuses plugins built by another.
const char *_Nonnull crucial_toolchain_id(void);

#endif
