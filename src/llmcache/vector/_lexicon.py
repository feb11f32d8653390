"""Word lists behind the semantic guards: general English, not tuned to any test set.

Kept apart from the guard logic so the rules read on one screen. Every list is lower-case;
the guards compare words after the same light stemming (see ``guards._stem``).
"""

from __future__ import annotations

# Words that carry no subject of their own in a request: function words and the framing
# of a question ("how do I", "what's the best way to", "can you tell me"). Quantifiers,
# comparatives and wh-words that change the answer (why, when, where, who) are NOT here.
STOPWORDS = frozenset(
    """
a an the and or but if so as at by for of with about to into onto from in on off out up
down over under again further then once here there this that these those it its itself
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his
himself she her hers herself they them their theirs themselves one ones someone somebody
anyone anybody everyone everybody something anything everything thing things stuff
is are was were be been being am do does did doing done have has had having will would
shall should can could may might must ought need needs needed
what which how whats hows whatre whose whom
please pls plz ok okay yes yeah sure well oh um uh
just also too very really actually basically simply exactly quite rather pretty fairly
still even ever already yet maybe perhaps probably possibly usually generally typically
normally currently basically literally honestly seriously kindly quickly
way ways method methods approach manner means step steps process procedure
instructions command commands query formula calculate compute check view
between among within across through during via per against along around behind beyond
near onto upon toward towards like unlike
utilize assist require required wish allowed permitted syntax write
best good great nice fine proper properly correct correctly right appropriate ideal
recommended recommend suggest suggestion suggestions advice advise tip tips idea ideas
possible able know tell explain describe show help want wanted wanting like would wonder
wondering curious trying try tried figure understand learnt let lets guide tutorial
get gets got getting go goes going gone make makes made making use using used uses
give take takes took find look looking see say said question questions answer anyone
any kind sort bit lot lots
""".split()
)

# Words the scope guard keeps as content even though they look like function words: they
# change the answer ("all" vs "some", "first" vs "last", "why" vs "how").
KEEP = frozenset(
    """
all some every each only first last most least few several both either more less fewer
many much enough half whole entire single multiple other another same different
why when where who
""".split()
)

NEGATION_CUES = frozenset(
    """
not no never none nobody nothing nowhere neither nor cannot cant without unable
dont doesnt didnt isnt arent wasnt werent couldnt wouldnt shouldnt wont havent hasnt
hadnt mustnt neednt aint nope
""".split()
)

# Pairs of opposites. Either side may list several words meaning the same; a hit is
# vetoed when one text has only the left side and the other only the right side.
ANTONYMS: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(left.split()), frozenset(right.split()))
    for left, right in (
        ("buy purchase", "sell"),
        ("increase raise grow", "decrease reduce lower shrink"),
        ("before", "after"),
        ("enable activate", "disable deactivate"),
        ("add insert append", "remove delete subtract"),
        ("max maximum", "min minimum"),
        ("open", "close shut"),
        ("up", "down"),
        ("in into", "out"),
        ("import", "export"),
        ("on", "off"),
        ("start begin", "stop end finish"),
        ("more", "less fewer"),
        ("most", "least"),
        ("best", "worst"),
        ("better", "worse"),
        ("higher", "lower"),
        ("highest", "lowest"),
        ("high", "low"),
        ("big bigger biggest large larger largest", "small smaller smallest"),
        ("long longer longest", "short shorter shortest"),
        ("fast faster fastest quick quicker quickest", "slow slower slowest"),
        ("cheap cheaper cheapest", "expensive"),
        ("early earlier", "late later"),
        ("new newer newest", "old older oldest"),
        ("first", "last"),
        ("true", "false"),
        ("positive", "negative"),
        ("left", "right"),
        ("north", "south"),
        ("east", "west"),
        ("win won", "lose lost"),
        ("push", "pull"),
        ("send", "receive"),
        ("upload", "download"),
        ("upper uppercase", "lower lowercase"),
        ("inner", "outer"),
        ("internal", "external"),
        ("private", "public"),
        ("local", "remote"),
        ("client", "server"),
        ("frontend", "backend"),
        ("ascending asc", "descending desc"),
        ("connect", "disconnect"),
        ("encrypt", "decrypt"),
        ("encode", "decode"),
        ("compress", "decompress"),
        ("install", "uninstall"),
        ("lock", "unlock"),
        ("show", "hide"),
        ("allow accept permit", "deny reject block forbid"),
        ("include", "exclude"),
        ("join", "leave"),
        ("subscribe", "unsubscribe"),
        ("follow", "unfollow"),
        ("like love", "dislike hate"),
        ("agree", "disagree"),
        ("pros advantage", "cons"),
        ("gain profit", "loss"),
        ("credit", "debit"),
        ("deposit", "withdraw"),
        ("borrow", "lend"),
        ("input", "output"),
        ("read", "write"),
        ("above", "below"),
        ("over", "under"),
        ("inside", "outside"),
        ("top", "bottom"),
        ("front", "back"),
        ("forward", "backward"),
        ("next", "previous"),
        ("undo", "redo"),
        ("parent", "child"),
        ("source", "destination"),
        ("sender", "recipient"),
        ("serialize", "deserialize"),
        ("freeze", "thaw unfreeze"),
        ("hot warm heat", "cold cool chill"),
        ("wet", "dry"),
        ("raw", "cooked"),
        ("light", "dark heavy"),
        ("legal", "illegal"),
        ("safe", "dangerous unsafe"),
        ("healthy", "unhealthy"),
        ("male man men boy", "female woman women girl"),
        ("day", "night"),
        ("morning", "evening"),
        ("summer", "winter"),
        ("arrive arrival", "depart departure leave"),
        ("inbound", "outbound"),
        ("plus", "minus"),
        ("multiply", "divide"),
        ("odd", "even"),
        ("prefix", "suffix"),
        ("head", "tail"),
        ("vertical vertically", "horizontal horizontally"),
        ("row rows", "column columns"),
        ("width", "height"),
        ("easy easier easiest", "hard harder difficult"),
        ("simple", "complex complicated"),
        ("same similar", "different"),
        ("always", "never"),
        ("all everything everyone", "none nothing nobody"),
        ("all every each", "some only few several"),
        ("whole entire", "part partial"),
        ("sync synchronous", "async asynchronous"),
        ("static", "dynamic"),
        ("mutable", "immutable"),
        ("upgrade", "downgrade"),
        ("merge", "split"),
        ("expand", "collapse"),
        ("sweet", "savory salty sour bitter"),
        ("minimize", "maximize"),
        ("did was were", "will shall"),
        ("past", "future"),
        ("yesterday", "tomorrow"),
        ("spring", "autumn fall"),
        ("rise", "fall"),
        ("accept", "decline"),
        ("approve", "reject"),
        ("pass", "fail"),
        ("succeed success", "fail failure"),
        ("valid", "invalid"),
        ("pay", "refund"),
    )
)

# Words whose presence on one side only hardly changes a request ("in the app", "at
# home", "some"): the scope guard weighs them 0.5, so one such word alone is tolerated.
# Opposite quantifiers are caught by the antonym guard, not here.
SOFT = frozenset(
    """
app application account system device website site platform computer home
some all every each
""".split()
)

# Prefixes that negate a word: "install"/"uninstall", "possible"/"impossible".
NEGATING_PREFIXES = ("un", "dis", "in", "im", "il", "ir", "non", "de")

# Synonym classes: every word of a class counts as the first one. Only near-exact
# synonyms in everyday requests; a wrong merge would let a wrong answer through.
SYNONYMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(line.split())
    for line in """
buy purchase
car vehicle automobile auto
fix repair solve resolve troubleshoot
error issue problem bug trouble glitch
delete remove erase eliminate
cancel terminate discontinue
start begin
finish complete
big large huge
small little tiny
fast quick rapid speedy
fastest quickest
cost price fee pricing
cheap inexpensive affordable
expensive costly pricey
picture photo image pic
movie film
kid child children
doctor physician
shop store
hotel accommodation lodging
add create
change modify alter edit update adjust
email mail
password passcode passphrase
phone telephone cellphone smartphone
tv television
fridge refrigerator
app application
info information details
doc document
repo repository
config configuration setting preference
dir directory folder
difference differ different vs versus compare comparison distinguish
mean meaning definition define
weather forecast
package pkg parcel shipment
deliver delivery
track trace
sick ill unwell
task todo
deadline due
remind reminder
run execute
code program programming coding
website site
refund reimbursement
subscription membership
bill invoice
house home
apartment flat
holiday vacation
trash garbage rubbish
learn study
calorie kcal
temperature temp
hour hr
second sec
math maths mathematics
convert conversion
translate translation
install installation
register registration signup
login signin
logout signout
reserve reservation booking book
exit quit
open launch
improve boost enhance
merge combine join concatenate concat
summary summarize summarise recap synopsis
plot storyline
screen display monitor
luggage baggage bag suitcase
prevent avoid
visit travel trip journey tour
bring carry
count tally
choose pick select
shortcut hotkey keybinding
slow sluggish laggy
broken damaged defective faulty
answer reply respond response
employee staff worker
boss manager supervisor
colleague coworker teammate
salary wage
medicine medication
symptom sign
dinner supper
stove stovetop cooktop hob
pan skillet
couch sofa
author writer
dict dictionary
db database
js javascript
ts typescript
k8s kubernetes
env environment
func function
param parameter
arg argument
auth authentication
msg message
docs documentation
stats statistics
admin administrator
prod production
dev development
acct account
addr address
qty quantity
amt amount
lib library
""".strip().splitlines()
)

# Irregular forms and -tion nouns the light stemmer cannot join to their base.
IRREGULAR = {
    "children": "child",
    "men": "man",
    "women": "woman",
    "people": "person",
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "geese": "goose",
    "knives": "knife",
    "leaves": "leaf",
    "lives": "life",
    "wives": "wife",
    "halves": "half",
    "analyses": "analysis",
    "indices": "index",
    "matrices": "matrix",
    "configuration": "configure",
    "configurations": "configure",
    "installation": "install",
    "installations": "install",
    "registration": "register",
    "subscription": "subscribe",
    "description": "describe",
    "explanation": "explain",
    "reservation": "reserve",
    "cancellation": "cancel",
    "cancelation": "cancel",
    "organization": "organize",
    "organisation": "organize",
    "colour": "color",
    "colours": "color",
    "favourite": "favorite",
    "favourites": "favorite",
    "flavour": "flavor",
    "flavours": "flavor",
    "behaviour": "behavior",
    "centre": "center",
    "theatre": "theater",
    "metre": "meter",
    "metres": "meter",
    "litre": "liter",
    "litres": "liter",
    "grey": "gray",
    "cheque": "check",
    "programme": "program",
    "catalogue": "catalog",
    "neighbour": "neighbor",
    "labour": "labor",
    "honour": "honor",
}

# Phrases read as one word before the scope guard tokenises ("log in" is "login").
PHRASES = (
    (r"\b(?:log|sign)(?:ged|ging)?[\s-]?in(?:to)?\b", "login"),
    (r"\b(?:log|sign)(?:ged|ging)?[\s-]?out\b", "logout"),
    (r"\bsign(?:ed|ing)?[\s-]?up\b", "signup"),
    (r"\bset(?:ting)?[\s-]?up\b", "setup"),
    (r"\bto[\s-]?do(?:s)?\b", "todo"),
    (r"\be[\s-]mail", "email"),
    (r"\bwi[\s-]?fi\b", "wifi"),
    (r"\bcheck[\s-]?in\b", "checkin"),
    (r"\bcheck[\s-]?out\b", "checkout"),
    (r"\bquick question\b", " "),
    # "What's the simplest way to X?" asks "How do I X?" ("fastest", "cheapest" do not).
    (
        r"\b(?:easiest|simplest|best|right|proper|correct|recommended|preferred|standard|usual"
        r"|cleanest|ideal|good|easy|simple) (?:way|method) (?:to|of|for)\b",
        " ",
    ),
    (r"\bget(?:ting)? rid of\b", "remove"),
    (r"\bcustomer (?:support|service|care)\b", "customersupport"),
    (r"\bhow much (?:is|are|does|do)\b", "how much cost"),
    (r"\bwhat(?:'s| is) the reason\b", "why"),
    (
        r"\bwhere (?:can|do|would|should) (?:i|you|we) (find|see|get|locate|check|view)\b",
        r"how do i \1",
    ),
    (r"\bturn(?:s|ed|ing)? ([\w' ]{1,40}?) into\b", r"convert \1 into"),
    (r"\b(?:per|each|every) day\b", "daily"),
    (r"\b(?:per|each|every) week\b", "weekly"),
    (r"\b(?:per|each|every) month\b", "monthly"),
    (r"\b(?:per|each|every) year\b", "yearly"),
    # Arithmetic in words: `SymbolGuard` compares the operators ("divided by" is "/").
    (
        r"\bdivided by\b|\bmultiplied by\b|\bto the power of\b|\bplus\b|\bminus\b"
        r"|(?<=\d) times (?=\d)",
        " ",
    ),
)

# Words that are easily confused but mean different things: never treated as typos.
CONFUSABLES = frozenset(
    """
desert dessert affect effect loose lose then than later latter angel angle casual causal
form from weather whether accept except advice advise quite quiet breath breathe
principal principle stationary stationery compliment complement
""".split()
)

NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "dozen": 12,
    "couple": 2,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "single": 1,
}
SCALE_WORDS = {
    "hundred": 100,
    "thousand": 1000,
    "million": 10**6,
    "billion": 10**9,
    "trillion": 10**12,
    "lakh": 10**5,
    "crore": 10**7,
    "hundreds": 100,
    "thousands": 1000,
    "millions": 10**6,
    "billions": 10**9,
}
ORDINAL_WORDS = {
    "first": 1,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
# Month words that are also everyday words: counted only when capitalised or by a number.
AMBIGUOUS_MONTHS = frozenset(
    {
        "may",
        "march",
        "jan",
        "mar",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "apr",
        "feb",
    }
)
WEEKDAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
    "mon": "mon",
    "tue": "tue",
    "tues": "tue",
    "wed": "wed",
    "thu": "thu",
    "thur": "thu",
    "thurs": "thu",
    "fri": "fri",
    "sat": "sat",
    "sun": "sun",
    "weekday": "weekday",
    "weekdays": "weekday",
    "weekend": "weekend",
    "weekends": "weekend",
}
RELATIVE_DAYS = frozenset(
    """
today tomorrow yesterday tonight noon midnight morning afternoon evening
overnight daily weekly monthly yearly annually hourly
""".split()
)
RELATIVE_MARKERS = frozenset({"next", "last", "this", "previous", "coming", "past"})
PERIODS = frozenset(
    {
        "day",
        "week",
        "month",
        "year",
        "quarter",
        "weekend",
        "decade",
        "century",
        "season",
        "semester",
        "summer",
        "winter",
        "spring",
        "autumn",
        "fall",
        "night",
        "morning",
        "evening",
    }
)
CURRENCY_WORDS = {
    "dollar": "usd",
    "dollars": "usd",
    "usd": "usd",
    "bucks": "usd",
    "buck": "usd",
    "euro": "eur",
    "euros": "eur",
    "eur": "eur",
    "gbp": "gbp",
    "quid": "gbp",
    "yen": "jpy",
    "jpy": "jpy",
    "rupee": "inr",
    "rupees": "inr",
    "inr": "inr",
    "cents": "cent",
    "cent": "cent",
    "pence": "pence",
}
CURRENCY_SYMBOLS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}
# Units glued to a number ("5kg", "10ms") are split off so "5 kg" reads the same.
UNITS = frozenset(
    """
k m b bn kg g mg lb lbs oz km mi cm mm ml l gb mb kb tb gib mib ms s sec secs min mins h
hr hrs px em rem pt x mph kph kmh c f w kw kwh v mah hz ghz mhz gbps mbps
""".split()
)
THOUSANDS = {"k": 1000, "bn": 10**9}

# Words the stemmer keeps as they are: their "s" is not a plural ("https" is not "http").
KEEP_FORM = frozenset("https wss ftps smtps imaps sftp".split())

# Quantifier classes: a text's quantifiers are compared by class, so "all" = "every" =
# "each" and "any" = "some" = "at least one", while "all" vs "any" or "most" differ.
QUANTIFIERS = {
    **dict.fromkeys("all every each everyone everybody everything".split(), "all"),
    **dict.fromkeys("any some anyone anybody anything someone somebody something".split(), "some"),
    **dict.fromkeys("none nobody nothing".split(), "none"),
    "most": "most",
    "majority": "most",
    "few": "few",
    "several": "several",
    "many": "many",
    "both": "both",
    "either": "either",
    "neither": "neither",
}
# Phrases read as one quantifier first (and the uses of those words that are not one).
QUANTIFIER_PHRASES = (
    (r"\bat least (?:one|1)\b|\ba single\b", " some "),
    (r"\bno one\b", " none "),
    (r"\bthe majority of\b", " most "),
    (r"\ba few\b", " several "),
    (
        r"\b(?:at all|all right|after all|any more|anymore|any longer|some ?times?|"
        r"some ?how|some ?where|any ?how|any ?where|any ?way|every ?where|every ?day|each other|"
        r"either way|many thanks)\b",
        " ",
    ),
)

# Words that relate two things symmetrically: "A and B" is "B and A", so they never mark
# a role (see `OrderGuard`).
SYMMETRIC = frozenset(
    "and or nor vs versus between among both either neither plus & "
    "together each other mutual".split()
)

# Relations read the other way round by their opposite: "A is slower than B" asks what
# "B is faster than A" asks, and "A before B" what "B after A" does.
CONVERSES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(left.split()), frozenset(right.split()))
    for left, right in (
        ("bigger larger greater", "smaller"),
        ("longer", "shorter"),
        ("taller", "shorter"),
        ("faster quicker", "slower"),
        ("older", "younger newer"),
        ("heavier", "lighter"),
        ("higher", "lower"),
        ("earlier", "later"),
        ("better", "worse"),
        ("stronger", "weaker"),
        ("richer", "poorer"),
        ("warmer hotter", "colder cooler"),
        ("cheaper", "pricier"),
        ("closer nearer", "farther further"),
        ("more", "less fewer"),
        ("before", "after"),
        ("above", "below"),
        ("over", "under"),
        ("ahead", "behind"),
        ("precede precedes preceded", "follow follows followed"),
        ("north", "south"),
        ("east", "west"),
        ("buy buys bought", "sell sells sold"),
        ("lend lends lent", "borrow borrows borrowed"),
        ("send sends sent", "receive receives received"),
        ("parent", "child"),
        ("outnumber outnumbers", "trail trails"),
    )
)

# Courtesy that opens or closes a request and changes nothing in it ("Hi! ... Thanks so
# much!"): `_text.plain` removes it before the guards compare. Only whole formulas at the
# start or the end count: "How do I say thanks in French?" keeps its "thanks".
GREETINGS = (
    r"(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day)"
    r"|morning|evening)(?: there| again| all| everyone| folks)?"
)
THANKS = (
    r"(?:thanks|thank you|thx|ty|cheers|many thanks|much appreciated)"
    r"(?: (?:so|very) much| a lot| a ton| in advance| again"
    r"| for (?:your|the) (?:help|time|answer|reply))?"
)
OPENERS = (  # may run straight into the request
    r"sorry to (?:bother|trouble|disturb) you(?:,? but)?",
    r"excuse me(?:,? but)?",
    r"if you don'?t mind(?: me asking| my asking)?",
    r"no rush(?:,? but)?",
    r"quick (?:one|question)",
    r"(?:i'?d|i would) (?:really |greatly |very much )?appreciate"
    r"(?: it)? if you could",
    r"(?:i )?hope you'?re (?:well|doing well)",
    r"i have a (?:quick )?question",
    r"(?:a )?question for you",
)

# Words of a chat turn that only greets, thanks or acknowledges ("ok cool", "perfect,
# thanks", "hi again"), together with the stopwords: such a turn changes no answer.
CHATTER = frozenset(
    """
hi hello hey heya hiya howdy yo greetings morning afternoon evening day night there again
everyone folks all thanks thank thx ty tysm cheers appreciate appreciated grateful much so
ok okay k kk cool great nice awesome perfect excellent wonderful super sweet lovely
brilliant fantastic amazing neat got gotcha understood noted alright fine good haha hah
hehe lol wow oh ah ahh aha makes sense helps helpful welcome hope glad happy some bit
sounds sound interesting hmm hmmm hm huh yay woohoo enough easy clear indeed agreed
definitely totally fair quick
""".split()
)

# Words that point back into a conversation: a question holding one may need the turns
# before it ("How long will it take?", "Which one should I pick?").
ANAPHORA = frozenset(
    """
it its it's itself this that these those they them their theirs there he him his she her
hers one ones such same other others another else former latter above below previous
then also too again more instead which both either here so
""".split()
)
