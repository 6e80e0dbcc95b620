# pragma version ~=0.4.3
"""
@title Arena pool
@notice A constant-product pair with a 0.3 % fee, shaped like a Uniswap-V2 pair:
        tokens are sent in first, then `swap` or `mint` settles against the balances.
"""

interface ERC20:
    def balanceOf(owner: address) -> uint256: view
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable

event Swap:
    sender: indexed(address)
    amount0In: uint256
    amount1In: uint256
    amount0Out: uint256
    amount1Out: uint256
    to: indexed(address)

event Sync:
    reserve0: uint256
    reserve1: uint256

token0: public(address)
token1: public(address)
reserve0: uint256
reserve1: uint256
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])


@deploy
def __init__(token0_: address, token1_: address):
    assert token0_ != token1_, "POOL: identical tokens"
    self.token0 = token0_
    self.token1 = token1_


@view
@external
def getReserves() -> (uint256, uint256, uint256):
    return (self.reserve0, self.reserve1, block.timestamp)


@external
@nonreentrant
def mint(to: address) -> uint256:
    balance0: uint256 = staticcall ERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall ERC20(self.token1).balanceOf(self)
    amount0: uint256 = balance0 - self.reserve0
    amount1: uint256 = balance1 - self.reserve1
    liquidity: uint256 = 0
    if self.totalSupply == 0:
        liquidity = isqrt(amount0 * amount1)
    else:
        liquidity = min(amount0 * self.totalSupply // self.reserve0, amount1 * self.totalSupply // self.reserve1)
    assert liquidity > 0, "POOL: insufficient liquidity minted"
    self.totalSupply += liquidity
    self.balanceOf[to] += liquidity
    self._sync(balance0, balance1)
    return liquidity


@external
@nonreentrant
def swap(amount0Out: uint256, amount1Out: uint256, to: address):
    assert amount0Out > 0 or amount1Out > 0, "POOL: insufficient output amount"
    reserve0: uint256 = self.reserve0
    reserve1: uint256 = self.reserve1
    assert amount0Out < reserve0 and amount1Out < reserve1, "POOL: insufficient liquidity"
    assert to != self.token0 and to != self.token1, "POOL: invalid to"
    if amount0Out > 0:
        extcall ERC20(self.token0).transfer(to, amount0Out)
    if amount1Out > 0:
        extcall ERC20(self.token1).transfer(to, amount1Out)
    balance0: uint256 = staticcall ERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall ERC20(self.token1).balanceOf(self)
    amount0In: uint256 = 0
    amount1In: uint256 = 0
    if balance0 > reserve0 - amount0Out:
        amount0In = balance0 - (reserve0 - amount0Out)
    if balance1 > reserve1 - amount1Out:
        amount1In = balance1 - (reserve1 - amount1Out)
    assert amount0In > 0 or amount1In > 0, "POOL: insufficient input amount"
    adjusted0: uint256 = balance0 * 1000 - amount0In * 3
    adjusted1: uint256 = balance1 * 1000 - amount1In * 3
    assert adjusted0 * adjusted1 >= reserve0 * reserve1 * 1000 * 1000, "POOL: K"
    self._sync(balance0, balance1)
    log Swap(sender=msg.sender, amount0In=amount0In, amount1In=amount1In, amount0Out=amount0Out, amount1Out=amount1Out, to=to)


@internal
def _sync(balance0: uint256, balance1: uint256):
    self.reserve0 = balance0
    self.reserve1 = balance1
    log Sync(reserve0=balance0, reserve1=balance1)
