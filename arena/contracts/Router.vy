# pragma version ~=0.4.3
"""
@title Arena router
@notice The subset of the Uniswap-V2 router interface the agent and the arena use,
        over a single pool: quotes, exact-input swaps, adding and removing liquidity.
"""

interface ERC20:
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable

interface Pool:
    def token0() -> address: view
    def token1() -> address: view
    def getReserves() -> (uint256, uint256, uint256): view
    def swap(amount0Out: uint256, amount1Out: uint256, to: address): nonpayable
    def mint(to: address) -> uint256: nonpayable
    def burn(to: address) -> (uint256, uint256): nonpayable
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable

pool: public(address)
token0: public(address)
token1: public(address)


@deploy
def __init__(pool_: address):
    self.pool = pool_
    self.token0 = staticcall Pool(pool_).token0()
    self.token1 = staticcall Pool(pool_).token1()


@pure
@external
def getAmountOut(amountIn: uint256, reserveIn: uint256, reserveOut: uint256) -> uint256:
    return self._amount_out(amountIn, reserveIn, reserveOut)


@view
@external
def getAmountsOut(amountIn: uint256, path: DynArray[address, 2]) -> DynArray[uint256, 2]:
    return self._amounts_out(amountIn, path)


@external
def swapExactTokensForTokens(
    amountIn: uint256,
    amountOutMin: uint256,
    path: DynArray[address, 2],
    to: address,
    deadline: uint256,
) -> DynArray[uint256, 2]:
    assert block.timestamp <= deadline, "ROUTER: EXPIRED"
    amounts: DynArray[uint256, 2] = self._amounts_out(amountIn, path)
    assert amounts[1] >= amountOutMin, "ROUTER: INSUFFICIENT_OUTPUT_AMOUNT"
    extcall ERC20(path[0]).transferFrom(msg.sender, self.pool, amountIn)
    if path[0] == self.token0:
        extcall Pool(self.pool).swap(0, amounts[1], to)
    else:
        extcall Pool(self.pool).swap(amounts[1], 0, to)
    return amounts


@external
def addLiquidity(
    tokenA: address,
    tokenB: address,
    amountADesired: uint256,
    amountBDesired: uint256,
    amountAMin: uint256,
    amountBMin: uint256,
    to: address,
    deadline: uint256,
) -> (uint256, uint256, uint256):
    assert block.timestamp <= deadline, "ROUTER: EXPIRED"
    self._check_pair(tokenA, tokenB)
    amountA: uint256 = amountADesired
    amountB: uint256 = amountBDesired
    reserveA: uint256 = 0
    reserveB: uint256 = 0
    reserveA, reserveB = self._reserves(tokenA)
    if reserveA != 0 or reserveB != 0:
        optimalB: uint256 = amountADesired * reserveB // reserveA
        if optimalB <= amountBDesired:
            amountB = optimalB
        else:
            amountA = amountBDesired * reserveA // reserveB
    assert amountA >= amountAMin and amountB >= amountBMin, "ROUTER: INSUFFICIENT_AMOUNT"
    extcall ERC20(tokenA).transferFrom(msg.sender, self.pool, amountA)
    extcall ERC20(tokenB).transferFrom(msg.sender, self.pool, amountB)
    liquidity: uint256 = extcall Pool(self.pool).mint(to)
    return (amountA, amountB, liquidity)


@external
def removeLiquidity(
    tokenA: address,
    tokenB: address,
    liquidity: uint256,
    amountAMin: uint256,
    amountBMin: uint256,
    to: address,
    deadline: uint256,
) -> (uint256, uint256):
    assert block.timestamp <= deadline, "ROUTER: EXPIRED"
    self._check_pair(tokenA, tokenB)
    extcall Pool(self.pool).transferFrom(msg.sender, self.pool, liquidity)
    amount0: uint256 = 0
    amount1: uint256 = 0
    amount0, amount1 = extcall Pool(self.pool).burn(to)
    amountA: uint256 = amount0
    amountB: uint256 = amount1
    if tokenA != self.token0:
        amountA = amount1
        amountB = amount0
    assert amountA >= amountAMin, "ROUTER: INSUFFICIENT_A_AMOUNT"
    assert amountB >= amountBMin, "ROUTER: INSUFFICIENT_B_AMOUNT"
    return (amountA, amountB)


@pure
@internal
def _amount_out(amountIn: uint256, reserveIn: uint256, reserveOut: uint256) -> uint256:
    assert amountIn > 0, "ROUTER: INSUFFICIENT_INPUT_AMOUNT"
    assert reserveIn > 0 and reserveOut > 0, "ROUTER: INSUFFICIENT_LIQUIDITY"
    amountInWithFee: uint256 = amountIn * 997
    return amountInWithFee * reserveOut // (reserveIn * 1000 + amountInWithFee)


@view
@internal
def _amounts_out(amountIn: uint256, path: DynArray[address, 2]) -> DynArray[uint256, 2]:
    assert len(path) == 2, "ROUTER: INVALID_PATH"
    self._check_pair(path[0], path[1])
    reserveIn: uint256 = 0
    reserveOut: uint256 = 0
    reserveIn, reserveOut = self._reserves(path[0])
    return [amountIn, self._amount_out(amountIn, reserveIn, reserveOut)]


@view
@internal
def _check_pair(tokenA: address, tokenB: address):
    assert (tokenA == self.token0 and tokenB == self.token1) or (tokenA == self.token1 and tokenB == self.token0), "ROUTER: UNKNOWN_PAIR"


@view
@internal
def _reserves(tokenIn: address) -> (uint256, uint256):
    reserve0: uint256 = 0
    reserve1: uint256 = 0
    ignored: uint256 = 0
    reserve0, reserve1, ignored = staticcall Pool(self.pool).getReserves()
    if tokenIn == self.token0:
        return (reserve0, reserve1)
    return (reserve1, reserve0)
