"""Realistic, deterministic demo customers.

``demo_customers("east", 500)`` always returns the same 500 customers, and another seed
(another tenant slug) returns different ones. Every identifier passes the validators in
:mod:`dangan.services.identifiers`, and each customer's ID number or credit code carries
the area code of the district in its address.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from types import MappingProxyType
from typing import Final, Literal, TypeVar

from dangan.services.identifiers import make_id_number, make_mobile, make_uscc

Kind = Literal["INDIVIDUAL", "ENTERPRISE"]
Tier = Literal["KEY", "ORDINARY", "POTENTIAL"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    kind: Kind
    name: str
    phone: str
    email: str | None
    id_number: str | None
    uscc: str | None
    address: str
    region: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class District:
    name: str
    code: str  # six-digit GB/T 2260 area code


@dataclass(frozen=True, slots=True)
class City:
    name: str
    districts: tuple[District, ...]

    @property
    def short_name(self) -> str:
        """The name as used inside company names: 杭州市 → 杭州."""
        return self.name.removesuffix("市")


# Province → (share of demo customers, ("city district+code district+code", ...)). Taiwan, Hong
# Kong and Macao have weight 0: GB/T 2260 gives them no district codes, and their
# residents' mainland permits and companies do not carry 71/81/82 identifiers.
_GEOGRAPHY: Final[dict[str, tuple[int, tuple[str, ...]]]] = {
    "北京市": (6, ("北京市 东城区110101 西城区110102 朝阳区110105 海淀区110108",)),
    "天津市": (2, ("天津市 和平区120101 河西区120103 南开区120104",)),
    "河北省": (4, (
        "石家庄市 长安区130102 桥西区130104",
        "唐山市 路南区130202 路北区130203",
        "保定市 竞秀区130602 莲池区130606",
    )),
    "山西省": (2, ("太原市 小店区140105 迎泽区140106 杏花岭区140107",)),
    "内蒙古自治区": (2, (
        "呼和浩特市 新城区150102 回民区150103",
        "包头市 昆都仑区150203 青山区150204",
    )),
    "辽宁省": (3, (
        "沈阳市 和平区210102 沈河区210103",
        "大连市 中山区210202 西岗区210203 沙河口区210204",
    )),
    "吉林省": (2, ("长春市 南关区220102 朝阳区220104", "吉林市 昌邑区220202 船营区220204")),
    "黑龙江省": (2, ("哈尔滨市 道里区230102 南岗区230103", "大庆市 萨尔图区230602")),
    "上海市": (6, ("上海市 黄浦区310101 徐汇区310104 长宁区310105 浦东新区310115",)),
    "江苏省": (8, (
        "南京市 玄武区320102 秦淮区320104 鼓楼区320106",
        "苏州市 吴中区320506 姑苏区320508",
        "无锡市 滨湖区320211 梁溪区320213",
    )),
    "浙江省": (8, (
        "杭州市 上城区330102 西湖区330106 滨江区330108",
        "宁波市 海曙区330203 鄞州区330212",
        "温州市 鹿城区330302 瓯海区330304",
    )),
    "安徽省": (4, (
        "合肥市 瑶海区340102 庐阳区340103 蜀山区340104 包河区340111",
        "芜湖市 镜湖区340202",
    )),
    "福建省": (5, (
        "福州市 鼓楼区350102 台江区350103",
        "厦门市 思明区350203 湖里区350206",
        "泉州市 鲤城区350502 丰泽区350503",
    )),
    "江西省": (3, ("南昌市 东湖区360102 西湖区360103", "赣州市 章贡区360702")),
    "山东省": (7, (
        "济南市 历下区370102 市中区370103",
        "青岛市 市南区370202 市北区370203 崂山区370212",
        "烟台市 芝罘区370602",
    )),
    "河南省": (6, (
        "郑州市 中原区410102 二七区410103 金水区410105",
        "洛阳市 西工区410303 涧西区410305",
    )),
    "湖北省": (5, (
        "武汉市 江岸区420102 江汉区420103 武昌区420106 洪山区420111",
        "宜昌市 西陵区420502",
    )),
    "湖南省": (5, ("长沙市 芙蓉区430102 天心区430103 岳麓区430104", "株洲市 荷塘区430202")),
    "广东省": (10, (
        "广州市 越秀区440104 海珠区440105 天河区440106",
        "深圳市 罗湖区440303 福田区440304 南山区440305",
        "佛山市 禅城区440604 南海区440605 顺德区440606",
    )),
    "广西壮族自治区": (3, ("南宁市 兴宁区450102 青秀区450103", "桂林市 秀峰区450302 象山区450304")),
    "海南省": (1, (
        "海口市 秀英区460105 龙华区460106 美兰区460108",
        "三亚市 吉阳区460203 天涯区460204",
    )),
    "重庆市": (3, ("重庆市 渝中区500103 江北区500105 沙坪坝区500106 九龙坡区500107 南岸区500108",)),
    "四川省": (6, (
        "成都市 锦江区510104 青羊区510105 金牛区510106 武侯区510107",
        "绵阳市 涪城区510703",
    )),
    "贵州省": (2, ("贵阳市 南明区520102 云岩区520103", "遵义市 红花岗区520302")),
    "云南省": (3, ("昆明市 五华区530102 盘龙区530103", "曲靖市 麒麟区530302")),
    "西藏自治区": (1, ("拉萨市 城关区540102",)),
    "陕西省": (3, (
        "西安市 新城区610102 碑林区610103 莲湖区610104 雁塔区610113",
        "宝鸡市 渭滨区610302",
    )),
    "甘肃省": (1, ("兰州市 城关区620102 七里河区620103",)),
    "青海省": (1, ("西宁市 城东区630102 城中区630103",)),
    "宁夏回族自治区": (1, ("银川市 兴庆区640104 金凤区640106",)),
    "新疆维吾尔自治区": (1, ("乌鲁木齐市 天山区650102 沙依巴克区650103",)),
    "台湾省": (0, ("台北市 中正区710000 信义区710000", "高雄市 苓雅区710000")),
    "香港特别行政区": (0, ("香港特别行政区 中西区810000 油尖旺区810000",)),
    "澳门特别行政区": (0, ("澳门特别行政区 花地玛堂区820000 风顺堂区820000",)),
}  # fmt: skip


def _parse_district(spec: str) -> District:
    match = re.fullmatch(r"(\D+)(\d{6})", spec)
    if match is None:
        raise ValueError(f"district {spec!r} is not a name followed by a six-digit code")
    return District(match[1], match[2])


def _parse_city(spec: str) -> City:
    city_name, *districts = spec.split()
    return City(city_name, tuple(_parse_district(d) for d in districts))


CITIES: Final[Mapping[str, tuple[City, ...]]] = MappingProxyType(
    {region: tuple(map(_parse_city, specs)) for region, (_, specs) in _GEOGRAPHY.items()}
)


def _pairs(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse "王:wang 李:li" into (hanzi, pinyin) pairs."""
    return tuple((hanzi, pinyin) for hanzi, pinyin in (p.split(":") for p in spec.split()))


# Surnames in three frequency bands, then a few two-character (复姓) surnames.
_SURNAME_BANDS: Final = (
    (60, _pairs("王:wang 李:li 张:zhang 刘:liu 陈:chen")),
    (20, _pairs("杨:yang 黄:huang 赵:zhao 吴:wu 周:zhou 徐:xu 孙:sun 马:ma 朱:zhu 胡:hu"
                " 郭:guo 何:he 高:gao 林:lin 罗:luo")),
    (6, _pairs("郑:zheng 梁:liang 谢:xie 宋:song 唐:tang 许:xu 韩:han 冯:feng 邓:deng 曹:cao"
               " 彭:peng 曾:zeng 肖:xiao 田:tian 董:dong 袁:yuan 潘:pan 于:yu 蒋:jiang 蔡:cai"
               " 余:yu 杜:du 叶:ye 程:cheng 苏:su 魏:wei 吕:lv 丁:ding 任:ren 沈:shen 姚:yao"
               " 卢:lu 姜:jiang 崔:cui 钟:zhong 谭:tan 陆:lu 汪:wang 范:fan 金:jin 石:shi"
               " 廖:liao 贾:jia 夏:xia 韦:wei 方:fang 白:bai 邹:zou 孟:meng 熊:xiong 秦:qin"
               " 邱:qiu 江:jiang 尹:yin 薛:xue 段:duan 雷:lei 侯:hou 龙:long 史:shi 陶:tao"
               " 黎:li 贺:he 顾:gu 毛:mao 郝:hao 龚:gong 邵:shao 万:wan 钱:qian 严:yan 戴:dai")),
    (1, _pairs("欧阳:ouyang 司马:sima 上官:shangguan 诸葛:zhuge 司徒:situ 夏侯:xiahou")),
)  # fmt: skip
_SURNAMES: Final = tuple(pair for _, band in _SURNAME_BANDS for pair in band)
_SURNAME_CUM_WEIGHTS: Final = tuple(
    accumulate(weight for weight, band in _SURNAME_BANDS for _ in band)
)

# Given-name characters by sex and by generation: born before 1980 or after.
_GIVEN_CHARS: Final = {
    (False, True): _pairs("建:jian 国:guo 军:jun 华:hua 平:ping 明:ming 强:qiang 伟:wei 志:zhi"
                          " 勇:yong 刚:gang 文:wen 东:dong 海:hai 林:lin 成:cheng 春:chun 德:de"
                          " 永:yong 庆:qing 荣:rong 振:zhen 新:xin 立:li 斌:bin 亮:liang 峰:feng"
                          " 波:bo 辉:hui 民:min 福:fu 生:sheng 忠:zhong"),
    (False, False): _pairs("浩:hao 宇:yu 轩:xuan 睿:rui 泽:ze 子:zi 博:bo 昊:hao 然:ran 晨:chen"
                           " 俊:jun 杰:jie 鹏:peng 鑫:xin 凯:kai 帆:fan 旭:xu 宁:ning 天:tian"
                           " 嘉:jia 毅:yi 一:yi 航:hang 铭:ming 哲:zhe 磊:lei 超:chao 涛:tao"
                           " 阳:yang 翔:xiang 皓:hao"),
    (True, True): _pairs("秀:xiu 英:ying 兰:lan 芳:fang 丽:li 红:hong 霞:xia 艳:yan 玲:ling"
                         " 梅:mei 桂:gui 珍:zhen 凤:feng 云:yun 玉:yu 华:hua 琴:qin 敏:min"
                         " 静:jing 燕:yan 萍:ping 娟:juan 素:su 翠:cui 慧:hui 淑:shu 春:chun"),
    (True, False): _pairs("婷:ting 雪:xue 颖:ying 琳:lin 晶:jing 倩:qian 欣:xin 怡:yi 悦:yue"
                          " 雨:yu 涵:han 思:si 佳:jia 诗:shi 梦:meng 琪:qi 璐:lu 瑶:yao 洁:jie"
                          " 婧:jing 薇:wei 晓:xiao 可:ke 欢:huan 萱:xuan 妍:yan 彤:tong 馨:xin"
                          " 蕾:lei 娜:na 丹:dan"),
}  # fmt: skip

# 字号 (trade name) halves and industries (with the ASCII used in company e-mail domains).
_TRADE_FIRST: Final = _pairs(
    "明:ming 华:hua 恒:heng 瑞:rui 金:jin 天:tian 博:bo 鼎:ding 宏:hong 润:run 嘉:jia 正:zheng"
    " 启:qi 新:xin 云:yun 永:yong 盛:sheng 立:li 长:chang 信:xin 中:zhong 联:lian 同:tong"
    " 安:an 兴:xing 德:de 海:hai 卓:zhuo 创:chuang 智:zhi 越:yue 晟:sheng 汇:hui 诚:cheng"
    " 鸿:hong 开:kai 东:dong 百:bai"
)
_TRADE_SECOND: Final = _pairs(
    "远:yuan 信:xin 通:tong 丰:feng 桥:qiao 成:cheng 雅:ya 达:da 泽:ze 禾:he 泰:tai 程:cheng"
    " 帆:fan 辉:hui 源:yuan 和:he 昌:chang 宇:yu 腾:teng 航:hang 力:li 鑫:xin 峰:feng 邦:bang"
    " 凯:kai 祥:xiang 锦:jin 川:chuan 睿:rui 拓:tuo 众:zhong"
)
_INDUSTRIES: Final = _pairs(
    "科技:tech 信息技术:it 网络科技:net 电子商务:ec 贸易:trade 供应链管理:scm 物流:logistics"
    " 建筑工程:build 装饰工程:deco 物业管理:pm 餐饮管理:food 医药:pharma 食品:foods"
    " 服装:fashion 机械设备:machinery 新材料:materials 文化传媒:media 环保科技:eco"
    " 教育咨询:edu 企业管理咨询:consulting 汽车服务:auto 电子:electronics 生物科技:bio"
    " 农业发展:agri 人力资源:hr"
)

_STREETS: Final = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "文化路", "新华路", "胜利路", "长江路",
    "黄河路", "青年路", "学府路", "科技路", "光明路", "东风路", "朝阳路", "滨河路", "幸福路",
    "花园路", "工业路", "健康路", "民主路", "湖滨路", "迎宾路", "世纪大道", "创业大道",
    "金融大道", "滨江大道",
)  # fmt: skip
_OFFICE_BUILDINGS: Final = ("国际大厦", "金融中心", "商务中心", "科技园", "广场", "大厦")
_MAIL_DOMAINS: Final = (
    ("qq.com", 30), ("163.com", 25), ("126.com", 10), ("foxmail.com", 6), ("sina.com", 5),
    ("outlook.com", 5), ("139.com", 5), ("gmail.com", 4), ("aliyun.com", 3), ("sohu.com", 2),
)  # fmt: skip
_MAIL_DOMAIN_NAMES: Final = tuple(name for name, _ in _MAIL_DOMAINS)
_MAIL_DOMAIN_CUM_WEIGHTS: Final = tuple(accumulate(weight for _, weight in _MAIL_DOMAINS))

_REGION_NAMES: Final = tuple(_GEOGRAPHY)
_REGION_CUM_WEIGHTS: Final = tuple(accumulate(weight for weight, _ in _GEOGRAPHY.values()))
_TIERS: Final[tuple[Tier, ...]] = ("KEY", "ORDINARY", "POTENTIAL")
_TIER_CUM_WEIGHTS: Final = (10, 80, 100)

_BIRTH_MIN: Final = date(1950, 1, 1)
_BIRTH_SPAN_DAYS: Final = (date(2004, 12, 31) - _BIRTH_MIN).days


def _weighted(rng: random.Random, items: Sequence[_T], cum_weights: Sequence[int]) -> _T:
    return rng.choices(items, cum_weights=cum_weights)[0]


def _unique(make: Callable[[], str], seen: set[str]) -> str:
    """Call ``make`` until it returns a value not in ``seen``; remember and return it."""
    value = make()
    while value in seen:
        value = make()
    seen.add(value)
    return value


@dataclass(slots=True)
class _Generator:
    """One run of :func:`demo_customers`: the random source and what has been handed out."""

    rng: random.Random
    phones: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)  # ID numbers and credit codes
    emails: set[str] = field(default_factory=set)
    enterprise_names: set[str] = field(default_factory=set)

    def customer(self) -> DemoCustomer:
        rng = self.rng
        region = _weighted(rng, _REGION_NAMES, _REGION_CUM_WEIGHTS)
        city = rng.choice(CITIES[region])
        district = rng.choice(city.districts)
        tier = _weighted(rng, _TIERS, _TIER_CUM_WEIGHTS)
        phone = _unique(lambda: make_mobile(rng), self.phones)
        locality = region + (city.name if city.name != region else "") + district.name
        street = f"{locality}{self._street()}{rng.randint(1, 999)}号"
        if rng.random() < 0.7:
            return self._individual(region, district, street, phone, tier)
        return self._enterprise(region, city, district, street, phone, tier)

    def _individual(
        self, region: str, district: District, street: str, phone: str, tier: Tier
    ) -> DemoCustomer:
        rng = self.rng
        birth = _BIRTH_MIN + timedelta(days=rng.randint(0, _BIRTH_SPAN_DAYS))
        female = rng.random() < 0.5
        surname, surname_pinyin = _weighted(rng, _SURNAMES, _SURNAME_CUM_WEIGHTS)
        pool = _GIVEN_CHARS[(female, birth.year < 1980)]
        given = rng.sample(pool, k=1 if rng.random() < 0.3 else 2)
        given_name = "".join(hanzi for hanzi, _ in given)
        given_pinyin = "".join(pinyin for _, pinyin in given)
        id_number = _unique(
            lambda: make_id_number(rng, birth, district.code, female=female), self.identifiers
        )
        building, unit, floor, room = (rng.randint(1, n) for n in (30, 4, 28, 4))
        flat = f"{building}幢{unit}单元{floor}{room:02d}室"
        email = None
        if rng.random() >= 0.2:
            local = rng.choice(
                (
                    f"{surname_pinyin}{given_pinyin}",
                    f"{given_pinyin}.{surname_pinyin}",
                    f"{surname_pinyin}{given_pinyin}{birth.year % 100:02d}",
                    f"{surname_pinyin[0]}{given_pinyin}{rng.randint(1, 999)}",
                )
            )
            email = self._email(local, _weighted(rng, _MAIL_DOMAIN_NAMES, _MAIL_DOMAIN_CUM_WEIGHTS))
        return DemoCustomer(
            kind="INDIVIDUAL",
            name=surname + given_name,
            phone=phone,
            email=email,
            id_number=id_number,
            uscc=None,
            address=street + flat,
            region=region,
            tier=tier,
        )

    def _enterprise(
        self, region: str, city: City, district: District, street: str, phone: str, tier: Tier
    ) -> DemoCustomer:
        rng = self.rng
        while True:
            (first, first_pinyin), (second, second_pinyin) = (
                rng.choice(_TRADE_FIRST),
                rng.choice(_TRADE_SECOND),
            )
            industry, industry_ascii = rng.choice(_INDUSTRIES)
            form = "股份有限公司" if rng.random() < 0.15 else "有限公司"
            name = f"{city.short_name}{first}{second}{industry}{form}"
            if first != second and name not in self.enterprise_names:
                self.enterprise_names.add(name)
                break
        uscc = _unique(lambda: make_uscc(rng, district.code), self.identifiers)
        office = f"{first}{second}{rng.choice(_OFFICE_BUILDINGS)}{rng.randint(2, 32)}层"
        email = None
        if rng.random() >= 0.2:
            mailbox = rng.choice(("info", "contact", "service", "sales", "hr", "office"))
            domain = f"{first_pinyin}{second_pinyin}{industry_ascii}.{rng.choice(('com', 'cn'))}"
            email = self._email(mailbox, domain)
        return DemoCustomer(
            kind="ENTERPRISE",
            name=name,
            phone=phone,
            email=email,
            id_number=None,
            uscc=uscc,
            address=street + office,
            region=region,
            tier=tier,
        )

    def _street(self) -> str:
        street = self.rng.choice(_STREETS)
        if street.endswith("路") and len(street) == 3 and self.rng.random() < 0.3:
            return street[:2] + self.rng.choice("东西南北中") + "路"
        return street

    def _email(self, local: str, domain: str) -> str:
        address = f"{local}@{domain}"
        while address in self.emails:
            address = f"{local}{self.rng.randint(2, 999)}@{domain}"
        self.emails.add(address)
        return address


def demo_customers(seed: str, count: int) -> list[DemoCustomer]:
    """``count`` demo customers, the same for the same ``seed``.

    About 70% individuals and 30% enterprises; tiers about 10% KEY, 70% ORDINARY and
    20% POTENTIAL; about 20% without an e-mail address. Phones, ID numbers, credit codes,
    e-mail addresses and company names are unique within one call.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    generator = _Generator(random.Random(seed))
    return [generator.customer() for _ in range(count)]
