# pragma version ~=0.4.3
"""
@title Arena pool
@notice A constant-product pair with a 0.3 % fee, shaped like a Uniswap-V2 pair:
        tokens are sent in first, then `swap` or `mint` settles against the balances.
        The pair is its own ERC-20 liquidity token: `mint` issues shares for tokens sent in,
        `burn` redeems the shares sent to the pair for their part of both reserves.
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

event Mint:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256

event Burn:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256
    to: indexed(address)

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event Sync:
    reserve0: uint256
    reserve1: uint256

token0: public(address)
token1: public(address)
reserve0: uint256
reserve1: uint256
name: public(constant(String[32])) = "Arena LP"
symbol: public(constant(String[8])) = "aLP"
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


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
    log Transfer(sender=empty(address), receiver=to, value=liquidity)
    self._sync(balance0, balance1)
    log Mint(sender=msg.sender, amount0=amount0, amount1=amount1)
    return liquidity


@external
@nonreentrant
def burn(to: address) -> (uint256, uint256):
    liquidity: uint256 = self.balanceOf[self]
    assert liquidity > 0, "POOL: nothing to burn"
    supply: uint256 = self.totalSupply
    balance0: uint256 = staticcall ERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall ERC20(self.token1).balanceOf(self)
    amount0: uint256 = liquidity * balance0 // supply
    amount1: uint256 = liquidity * balance1 // supply
    assert amount0 > 0 and amount1 > 0, "POOL: insufficient liquidity burned"
    self.balanceOf[self] = 0
    self.totalSupply = supply - liquidity
    log Transfer(sender=self, receiver=empty(address), value=liquidity)
    extcall ERC20(self.token0).transfer(to, amount0)
    extcall ERC20(self.token1).transfer(to, amount1)
    self._sync(balance0 - amount0, balance1 - amount1)
    log Burn(sender=msg.sender, amount0=amount0, amount1=amount1, to=to)
    return (amount0, amount1)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    assert allowed >= amount, "POOL: insufficient allowance"
    if allowed != max_value(uint256):
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "POOL: transfer to zero"
    assert self.balanceOf[sender] >= amount, "POOL: insufficient balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


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
