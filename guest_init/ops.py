"""Op registry: one handler per op, with declared and checked arguments."""

from guest_init import protocol
from guest_init.protocol import ProtocolError


class Arg:
    """Declares one argument: its accepted JSON type(s), whether it is required, its default."""

    def __init__(self, types, required=False, default=None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.required = required
        self.default = default

    def accepts(self, value):
        if isinstance(value, bool) and bool not in self.types:
            return False  # bool is an int subclass: never let True pass as an integer
        return isinstance(value, self.types)


class OpRegistry:
    def __init__(self):
        self._ops = {}
        # gate(name, args) raises ProtocolError when the op is not allowed now (the boot policy,
        # guest_init/measured.py); args is None for an op that does not exist.
        self.gate = None

    def add(self, name, handler, **arg_specs):
        """handler(args: dict) -> result dict; raise ProtocolError for an error reply."""
        self._ops[name] = (handler, arg_specs)

    def names(self):
        return sorted(self._ops)

    def call(self, name, args):
        try:
            handler, specs = self._ops[name]
        except KeyError:
            if self.gate is not None:
                self.gate(name, None)
            raise ProtocolError(protocol.UNKNOWN_OP, "unknown op %r" % name) from None
        checked = check_args(name, specs, args)
        if self.gate is not None:
            self.gate(name, checked)
        return handler(checked)


def check_args(op, specs, args):
    """Return args completed with defaults, or raise bad_request naming the offending field."""
    for key in args:
        if key not in specs:
            raise ProtocolError(protocol.BAD_REQUEST, "op %r has no argument %r" % (op, key))
    checked = {}
    for key, spec in specs.items():
        if key not in args:
            if spec.required:
                raise ProtocolError(protocol.BAD_REQUEST, "op %r needs argument %r" % (op, key))
            checked[key] = spec.default
            continue
        value = args[key]
        if not spec.accepts(value):
            wanted = " or ".join(_TYPE_NAMES[t] for t in spec.types)
            raise ProtocolError(
                protocol.BAD_REQUEST,
                "argument %r of op %r must be %s, not %s" % (key, op, wanted, protocol.json_type(value)),
            )
        checked[key] = value
    return checked


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}
