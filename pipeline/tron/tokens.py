"""Token registry: symbols, decimals and USD prices for the tokens the monitor values.

Stablecoins are valued 1:1; TRX (and wrapped TRX) at a configured price, because a risk monitor
needs one USD scale across tokens and a static, documented price beats a network call in the hot
path. Unknown TRC20 contracts are still decoded exactly (raw integer amount), with decimals 0 and
no USD value, so nothing is dropped for lack of metadata. The registry is extendable from the
configuration file (``[tokens."<address>"]`` tables).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pipeline.errors import AddressError, ConfigError
from pipeline.tron.address import validate_base58


class TokenInfo(NamedTuple):
    token: str  # "TRX", a TRC10 id, or a TRC20 contract address (base58)
    symbol: str
    decimals: int
    usd_price: float  # 0.0 = no USD valuation


TRX = TokenInfo("TRX", "TRX", 6, 0.25)
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDC = "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"

# The major TRC20 tokens by transfer volume. Addresses are checked at load.
DEFAULT_TRC20: tuple[TokenInfo, ...] = (
    TokenInfo(USDT, "USDT", 6, 1.0),
    TokenInfo(USDC, "USDC", 6, 1.0),
    TokenInfo("TPYmHEhy5n8TCEfYGqW2rPxsghSfzghPDn", "USDD", 18, 1.0),
    TokenInfo("TUpMhErZL2fhh4sVNULAbNKLokS4GjC1F4", "TUSD", 18, 1.0),
    TokenInfo("TMwFHYXLJaRUPeW6421aqXL4ZEzPRFGkGT", "USDJ", 18, 1.0),
    TokenInfo("TNUC9Qb1rRpS5CbWLmNMxXBjyFoydXjWFR", "WTRX", 6, TRX.usd_price),
    TokenInfo("TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4", "BTT", 18, 0.0),
    TokenInfo("TCFLL5dx5ZJdKnWuesXxi1VPwjLVmWZZy9", "JST", 18, 0.0),
    TokenInfo("TSSMHYeV2uE9qYH95DqyoCuNCzEL1NvU3S", "SUN", 18, 0.0),
    TokenInfo("TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7", "WIN", 6, 0.0),
    TokenInfo("TXpw8XeWYeTUd4quDskoUqeQPowRh4jY65", "WBTC", 8, 0.0),
    TokenInfo("THb4CqiFdwNHsWsQCs4JhzwjMWys4aqCbF", "ETH", 18, 0.0),
)


class TokenRegistry:
    """Lookup of token metadata by token key; immutable after construction."""

    __slots__ = ("_by_key", "trx")

    def __init__(self, tokens: Mapping[str, TokenInfo], trx: TokenInfo = TRX) -> None:
        self._by_key = dict(tokens)
        self.trx = trx

    def get(self, token: str) -> TokenInfo | None:
        return self._by_key.get(token)

    def trc20(self, contract: str) -> TokenInfo:
        info = self._by_key.get(contract)
        return info if info is not None else TokenInfo(contract, "", 0, 0.0)

    def trc10(self, asset_id: str) -> TokenInfo:
        info = self._by_key.get(asset_id)
        return info if info is not None else TokenInfo(asset_id, f"TRC10:{asset_id}", 0, 0.0)

    def __len__(self) -> int:
        return len(self._by_key)

    @classmethod
    def build(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None,
              trx_usd: float | None = None) -> TokenRegistry:
        """Defaults plus user entries keyed by contract address or TRC10 id.

        Each override needs ``symbol`` and ``decimals`` and may set ``usd_price``. Errors name the
        token key and the field, since they come from a configuration file.
        """
        trx = TRX if trx_usd is None else TRX._replace(usd_price=float(trx_usd))
        tokens = {t.token: t for t in DEFAULT_TRC20}
        if trx_usd is not None:
            tokens["TNUC9Qb1rRpS5CbWLmNMxXBjyFoydXjWFR"] = tokens[
                "TNUC9Qb1rRpS5CbWLmNMxXBjyFoydXjWFR"]._replace(usd_price=float(trx_usd))
        for key, spec in (overrides or {}).items():
            where = f"tokens.{key}"
            if not key.isdigit():
                try:
                    validate_base58(key)
                except AddressError as err:
                    raise ConfigError(f"{where}: {err}") from None
            try:
                symbol = str(spec["symbol"])
                decimals = int(spec["decimals"])
                price = float(spec.get("usd_price", 0.0))
            except KeyError as err:
                raise ConfigError(f"{where}: missing field {err.args[0]!r}") from None
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{where}: {err}") from None
            if not 0 <= decimals <= 77:
                raise ConfigError(f"{where}.decimals: must be 0..77, got {decimals}")
            tokens[key] = TokenInfo(key, symbol, decimals, price)
        return cls(tokens, trx)
