from loyalty.errors import InsufficientPoints


class NotEnoughPoints(InsufficientPoints):
    def __init__(self, wanted: int) -> None:
        super().__init__(
            f"the member does not have {wanted} points available", field="redeem_points"
        )
        self.wanted = wanted
