from datetime import timedelta

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import stepped_temporal as stepped


async def test_smoke(stepped_env):
    class Base(DeclarativeBase):
        pass

    class Car(stepped.Actor, Base):
        __tablename__ = "cars"
        id: Mapped[int] = mapped_column(primary_key=True)
        honks: Mapped[int] = mapped_column(default=0)
        mileage: Mapped[int] = mapped_column(default=0)

        def honk(self):
            self.honks += 1

        def drive(self, miles):
            self.mileage += miles

    park = Car.stepped_action("park")

    @park.step
    def _(car, step, miles):
        car.honk()

    @park.step
    def _(car, step, miles):
        step.do("honk")
        step.wait(timedelta(hours=5))
        step.on([car, None], "drive", miles)

    car = stepped_env.create(Car, id=1)
    result = await stepped.run(car, "park", 10)
    print(result)
    assert result.status == "succeeded"
    car = stepped_env.reload(car)
    assert car.honks == 2
    assert car.mileage == 10
