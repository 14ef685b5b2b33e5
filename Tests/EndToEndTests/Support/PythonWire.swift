/// Protobuf wire helpers shared by the tests' raw Python clients: `varint`,
/// `field` (length-delimited), `number` (varint field) and `parse` (one message
/// into {field number: value}, varint and length-delimited fields only).
/// Prepended to a script after its imports (`PythonWire.script(imports:body:)`).
enum PythonWire {
    static let helpers = #"""
        def varint(n):
            out = bytearray()
            while True:
                b = n & 0x7F
                n >>= 7
                out.append(b | (0x80 if n else 0))
                if not n:
                    return bytes(out)

        def field(num, data):
            return varint(num << 3 | 2) + varint(len(data)) + data

        def number(num, value):
            return varint(num << 3) + varint(value)

        def parse(body):
            fields, i = {}, 0
            while i < len(body):
                key, shift = 0, 0
                while True:
                    b = body[i]; i += 1
                    key |= (b & 0x7F) << shift; shift += 7
                    if not b & 0x80: break
                num, wire = key >> 3, key & 7
                if wire == 0:
                    value, shift = 0, 0
                    while True:
                        b = body[i]; i += 1
                        value |= (b & 0x7F) << shift; shift += 7
                        if not b & 0x80: break
                elif wire == 2:
                    length, shift = 0, 0
                    while True:
                        b = body[i]; i += 1
                        length |= (b & 0x7F) << shift; shift += 7
                        if not b & 0x80: break
                    value = body[i:i + length]; i += length
                else:
                    raise ValueError("wire type %d" % wire)
                fields[num] = value
            return fields
        """#

    /// `imports`, the helpers, then `body`: one Python program.
    static func script(imports: String, body: String) -> String {
        imports + "\n\n" + helpers + "\n\n" + body
    }
}
