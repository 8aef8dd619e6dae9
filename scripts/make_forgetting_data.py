"""Write the forgetting probes shipped in ``core/ftx/forgetting/``: ``questions.jsonl`` (short
general questions with checkable answers, for retention) and ``general_text.jsonl`` (a few short
paragraphs in several languages, for drift).

Everything here was written for ftx (no benchmark text); the arithmetic rows come from a fixed
seed, so rerunning the script rewrites the same files. Each question row is
``{"id", "kind", "lang", "question", "answers"}``: ``answers`` are the accepted answers, compared
by :func:`ftx.forgetting.questions.answer_matches`.

    python scripts/make_forgetting_data.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "core" / "ftx" / "forgetting"
NUMBER = "Answer with just the number."
WORD = "Answer with one word."

# (question, accepted answers) — common facts, phrased to be answered in one word.
FACTS: list[tuple[str, list[str]]] = [
    ("What is the capital of France?", ["Paris"]),
    ("What is the capital of Japan?", ["Tokyo"]),
    ("What is the capital of Italy?", ["Rome"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("What is the capital of Spain?", ["Madrid"]),
    ("What is the capital of the United Kingdom?", ["London"]),
    ("What is the capital of Russia?", ["Moscow"]),
    ("What is the capital of China?", ["Beijing"]),
    ("What is the capital of Egypt?", ["Cairo"]),
    ("What is the capital of Greece?", ["Athens"]),
    ("What is the capital of Portugal?", ["Lisbon"]),
    ("What is the capital of Canada?", ["Ottawa"]),
    ("What is the capital of Australia?", ["Canberra"]),
    ("What is the capital of Ireland?", ["Dublin"]),
    ("What is the capital of Austria?", ["Vienna"]),
    ("What is the capital of Norway?", ["Oslo"]),
    ("What is the capital of Sweden?", ["Stockholm"]),
    ("What is the capital of Poland?", ["Warsaw"]),
    ("What is the capital of South Korea?", ["Seoul"]),
    ("What is the capital of India?", ["Delhi", "New Delhi"]),
    ("What is the capital of Mexico?", ["Mexico City", "Mexico"]),
    ("What is the capital of Kenya?", ["Nairobi"]),
    ("What is the capital of Thailand?", ["Bangkok"]),
    ("What is the capital of Argentina?", ["Buenos Aires"]),
    ("What is the capital of the Netherlands?", ["Amsterdam"]),
    ("What is the largest planet in our solar system?", ["Jupiter"]),
    ("Which planet is closest to the Sun?", ["Mercury"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("Which planet do we live on?", ["Earth"]),
    ("What is the natural satellite of the Earth called?", ["Moon", "the Moon"]),
    ("What star is at the centre of our solar system?", ["Sun", "the Sun"]),
    ("What is the largest ocean on Earth?", ["Pacific", "the Pacific"]),
    ("What is the longest river in Africa?", ["Nile", "the Nile"]),
    ("What is the largest desert in Africa?", ["Sahara", "the Sahara"]),
    ("On which continent is Brazil?", ["South America"]),
    ("On which continent is Kenya?", ["Africa"]),
    ("On which continent is France?", ["Europe"]),
    ("On which continent is Japan?", ["Asia"]),
    ("What colour is the sky on a clear day?", ["Blue"]),
    ("What colour is fresh grass?", ["Green"]),
    ("What colour is snow?", ["White"]),
    ("What colour is a ripe banana?", ["Yellow"]),
    ("What colour is coal?", ["Black"]),
    ("What colour do you get by mixing blue and yellow?", ["Green"]),
    ("What colour do you get by mixing red and white?", ["Pink"]),
    ("What colour is blood?", ["Red"]),
    ("What gas do humans need to breathe to live?", ["Oxygen"]),
    ("What gas do plants take in from the air for photosynthesis?", ["Carbon dioxide", "CO2"]),
    ("What is frozen water called?", ["Ice"]),
    ("What is the chemical symbol for gold?", ["Au"]),
    ("What is the chemical symbol for iron?", ["Fe"]),
    ("What is the chemical formula of water?", ["H2O"]),
    ("Which animal is known as the king of the jungle?", ["Lion", "the lion"]),
    ("What is the largest mammal on Earth?", ["Blue whale", "whale", "the blue whale"]),
    ("What is the tallest animal in the world?", ["Giraffe", "the giraffe"]),
    ("Which animal says 'moo'?", ["Cow", "a cow", "the cow"]),
    ("Which animal barks?", ["Dog", "a dog", "the dog", "dogs"]),
    ("What do bees make?", ["Honey"]),
    ("What do caterpillars turn into?", ["Butterflies", "butterfly", "moths", "a butterfly"]),
    ("What is a baby dog called?", ["Puppy", "a puppy"]),
    ("What is a baby cat called?", ["Kitten", "a kitten"]),
    ("What is a baby cow called?", ["Calf", "a calf"]),
    ("How many legs does a spider have?", ["8", "eight"]),
    ("How many legs does an insect have?", ["6", "six"]),
    ("How many legs does a dog have?", ["4", "four"]),
    ("How many days are in a week?", ["7", "seven"]),
    ("How many months are in a year?", ["12", "twelve"]),
    ("How many hours are in a day?", ["24", "twenty-four", "twenty four"]),
    ("How many minutes are in an hour?", ["60", "sixty"]),
    ("How many seconds are in a minute?", ["60", "sixty"]),
    ("How many days are in a leap year?", ["366"]),
    ("How many continents are there?", ["7", "seven"]),
    ("How many sides does a triangle have?", ["3", "three"]),
    ("How many sides does a square have?", ["4", "four"]),
    ("How many sides does a hexagon have?", ["6", "six"]),
    ("How many sides does an octagon have?", ["8", "eight"]),
    ("How many players are on a football (soccer) team on the field?", ["11", "eleven"]),
    ("How many letters are in the English alphabet?", ["26", "twenty-six"]),
    ("How many wheels does a bicycle have?", ["2", "two"]),
    ("How many strings does a standard guitar have?", ["6", "six"]),
    ("At what temperature in degrees Celsius does water freeze?", ["0", "zero"]),
    ("At what temperature in degrees Celsius does water boil at sea level?", ["100"]),
    ("What day comes after Monday?", ["Tuesday"]),
    ("What day comes after Friday?", ["Saturday"]),
    ("What day comes before Sunday?", ["Saturday"]),
    ("What month comes after January?", ["February"]),
    ("What month comes after June?", ["July"]),
    ("What is the first month of the year?", ["January"]),
    ("What is the last month of the year?", ["December"]),
    ("Which season comes after winter?", ["Spring"]),
    ("Which season comes after summer?", ["Autumn", "Fall"]),
    ("Who wrote 'Romeo and Juliet'?", ["Shakespeare", "William Shakespeare"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "Leonardo da Vinci", "da Vinci"]),
    ("Who developed the theory of relativity?", ["Einstein", "Albert Einstein"]),
    ("What is the opposite of hot?", ["Cold"]),
    ("What is the opposite of big?", ["Small", "little"]),
    ("What is the opposite of up?", ["Down"]),
    ("What is the opposite of day?", ["Night"]),
    ("What is the opposite of fast?", ["Slow"]),
    ("What is the opposite of happy?", ["Sad", "unhappy"]),
    ("What is the opposite of open?", ["Closed", "close", "shut"]),
    ("What is the opposite of light?", ["Dark", "heavy"]),
    ("What is the opposite of yes?", ["No"]),
    ("What is the opposite of left?", ["Right"]),
    ("What is the plural of mouse?", ["Mice"]),
    ("What is the plural of child?", ["Children"]),
    ("What is the plural of foot?", ["Feet"]),
    ("What is the plural of tooth?", ["Teeth"]),
    ("What is the past tense of go?", ["Went"]),
    ("What is the past tense of eat?", ["Ate"]),
    ("What is the past tense of run?", ["Ran"]),
    ("What is the past tense of see?", ["Saw"]),
    ("What language is mainly spoken in Brazil?", ["Portuguese"]),
    ("What language is mainly spoken in Japan?", ["Japanese"]),
    ("What language is mainly spoken in Germany?", ["German"]),
    ("What language is mainly spoken in Mexico?", ["Spanish"]),
    ("What is the currency of Japan?", ["Yen", "the yen", "Japanese yen"]),
    ("What is the currency of the United Kingdom?", ["Pound", "pound sterling", "pounds"]),
    ("What fruit is used to make wine?", ["Grapes", "grape"]),
    ("What is the main ingredient of guacamole?", ["Avocado", "avocados"]),
    ("What do you call a shape with three sides?", ["Triangle", "a triangle"]),
    ("What is the hardest natural substance?", ["Diamond", "diamonds"]),
    ("What organ pumps blood through the body?", ["Heart", "the heart"]),
    ("What organ do we use to think?", ["Brain", "the brain"]),
    ("How many bones are in the adult human body?", ["206"]),
    ("What is the boiling point of water in degrees Fahrenheit?", ["212"]),
    ("Which metal is liquid at room temperature?", ["Mercury"]),
    ("What is the largest country in the world by area?", ["Russia"]),
    ("What is the smallest prime number?", ["2", "two"]),
    ("What is the square root of 81?", ["9", "nine"]),
    ("What is the square root of 49?", ["7", "seven"]),
    ("What is 10 squared?", ["100"]),
    ("How many centimetres are in a metre?", ["100"]),
    ("How many grams are in a kilogram?", ["1000", "1,000"]),
]

# "Reply with only the word X": the answer is X; the words are ordinary and varied.
ECHO_WORDS = [
    "apple",
    "river",
    "yellow",
    "seven",
    "window",
    "garden",
    "pencil",
    "orange",
    "mountain",
    "coffee",
    "silver",
    "thunder",
    "rabbit",
    "bridge",
    "summer",
    "candle",
    "forest",
    "planet",
    "guitar",
    "lemon",
    "winter",
    "basket",
    "ocean",
    "tiger",
    "violet",
    "hammer",
    "cloud",
    "island",
    "paper",
    "dragon",
]
ECHO_FORMS = [
    "Reply with only the word {w}.",
    "Say the word '{w}' and nothing else.",
    "Repeat after me, exactly: {w}",
]

# Spelling / counting / ordering instructions with one checkable answer.
INSTRUCTIONS: list[tuple[str, list[str]]] = [
    ("Which is larger, 7 or 3? Answer with just the number.", ["7"]),
    ("Which is larger, 12 or 21? Answer with just the number.", ["21"]),
    ("Which is smaller, 9 or 4? Answer with just the number.", ["4"]),
    ("Which is smaller, 15 or 51? Answer with just the number.", ["15"]),
    ("What is the first letter of the word 'banana'? Answer with just the letter.", ["b"]),
    ("What is the first letter of the word 'elephant'? Answer with just the letter.", ["e"]),
    ("What is the last letter of the word 'cat'? Answer with just the letter.", ["t"]),
    ("What letter comes after A in the alphabet? Answer with just the letter.", ["B"]),
    ("What letter comes after C in the alphabet? Answer with just the letter.", ["D"]),
    ("What number comes after 9? Answer with just the number.", ["10", "ten"]),
    ("What number comes after 99? Answer with just the number.", ["100"]),
    ("What number comes before 20? Answer with just the number.", ["19"]),
    ("Is 10 an even or an odd number? Answer with one word.", ["Even"]),
    ("Is 7 an even or an odd number? Answer with one word.", ["Odd"]),
    ("Is the Sun hot or cold? Answer with one word.", ["Hot"]),
    ("Is ice hot or cold? Answer with one word.", ["Cold"]),
    ("Is a mouse bigger or smaller than an elephant? Answer with one word.", ["Smaller"]),
    ("Can fish swim? Answer yes or no.", ["Yes"]),
    ("Can a rock fly by itself? Answer yes or no.", ["No"]),
    ("Is water wet? Answer yes or no.", ["Yes"]),
    ("Is Paris in France? Answer yes or no.", ["Yes"]),
    ("Is Tokyo in Brazil? Answer yes or no.", ["No"]),
    ("Is 5 greater than 2? Answer yes or no.", ["Yes"]),
    ("Is 3 greater than 8? Answer yes or no.", ["No"]),
    ("Write the number twelve in digits.", ["12"]),
    ("Write the number forty-two in digits.", ["42"]),
    ("Write the number one hundred in digits.", ["100"]),
    ("Write the word 'hello' in capital letters.", ["HELLO"]),
    ("Complete the sequence: 2, 4, 6, 8, ... Answer with just the next number.", ["10"]),
    ("Complete the sequence: 5, 10, 15, 20, ... Answer with just the next number.", ["25"]),
    ("Complete the sequence: 1, 2, 3, 4, ... Answer with just the next number.", ["5"]),
]

# Other languages: the question and its answer in that language (or a name that is the same).
OTHER_LANGUAGES: list[tuple[str, str, list[str]]] = [
    ("fr", "Quelle est la capitale de la France ? Réponds en un mot.", ["Paris"]),
    ("fr", "Quelle est la capitale de l'Italie ? Réponds en un mot.", ["Rome"]),
    ("fr", "Combien font deux plus deux ? Réponds avec un nombre.", ["4", "quatre"]),
    ("fr", "De quelle couleur est le ciel par beau temps ? Réponds en un mot.", ["Bleu"]),
    ("fr", "Combien de jours y a-t-il dans une semaine ? Réponds avec un nombre.", ["7", "sept"]),
    ("fr", "Comment dit-on 'cat' en français ? Réponds en un mot.", ["Chat", "le chat"]),
    ("es", "¿Cuál es la capital de España? Responde con una palabra.", ["Madrid"]),
    ("es", "¿Cuál es la capital de Francia? Responde con una palabra.", ["París", "Paris"]),
    ("es", "¿Cuánto es tres más dos? Responde con un número.", ["5", "cinco"]),
    ("es", "¿De qué color es la nieve? Responde con una palabra.", ["Blanca", "blanco"]),
    ("es", "¿Cuántos meses tiene un año? Responde con un número.", ["12", "doce"]),
    ("es", "¿Cómo se dice 'dog' en español? Responde con una palabra.", ["Perro", "el perro"]),
    ("de", "Was ist die Hauptstadt von Deutschland? Antworte mit einem Wort.", ["Berlin"]),
    ("de", "Was ist die Hauptstadt von Österreich? Antworte mit einem Wort.", ["Wien", "Vienna"]),
    ("de", "Wie viel ist vier plus vier? Antworte mit einer Zahl.", ["8", "acht"]),
    ("de", "Welche Farbe hat Gras? Antworte mit einem Wort.", ["Grün", "grun"]),
    ("de", "Wie sagt man 'water' auf Deutsch? Antworte mit einem Wort.", ["Wasser"]),
    ("it", "Qual è la capitale dell'Italia? Rispondi con una parola.", ["Roma", "Rome"]),
    ("it", "Quanto fa due più tre? Rispondi con un numero.", ["5", "cinque"]),
    ("pt", "Qual é a capital de Portugal? Responda com uma palavra.", ["Lisboa", "Lisbon"]),
    ("ja", "日本の首都はどこですか？一言で答えてください。", ["東京", "Tokyo"]),
    ("ja", "フランスの首都はどこですか？一言で答えてください。", ["パリ", "Paris"]),
    ("ja", "1たす1はいくつですか？数字だけで答えてください。", ["2", "二"]),
    ("ja", "2たす3はいくつですか？数字だけで答えてください。", ["5", "五"]),
    ("ja", "10ひく4はいくつですか？数字だけで答えてください。", ["6", "六"]),
    ("ja", "1週間は何日ですか？数字だけで答えてください。", ["7", "七"]),
    ("ja", "1年は何か月ですか？数字だけで答えてください。", ["12", "十二"]),
    ("ja", "「りんご」を英語で言うと何ですか？一語で答えてください。", ["apple", "an apple"]),
    ("ja", "「犬」を英語で言うと何ですか？一語で答えてください。", ["dog", "a dog"]),
    ("ja", "「猫」を英語で言うと何ですか？一語で答えてください。", ["cat", "a cat"]),
    ("ja", "空は何色ですか？一言で答えてください。", ["青", "青い", "blue"]),
    ("ja", "「はい」とだけ答えてください。", ["はい"]),
    ("ja", "「ありがとう」とだけ書いてください。", ["ありがとう"]),
    ("ja", "富士山はどの国にありますか？一言で答えてください。", ["日本", "Japan"]),
]

# A few short paragraphs of ordinary text (not from any task), teacher-forced for drift.
GENERAL_TEXT: list[tuple[str, str]] = [
    (
        "en",
        "The library on the corner opens at nine in the morning. On rainy days it fills with "
        "students who come to read, to write their essays, or simply to stay dry. The librarian "
        "knows most of them by name and keeps a kettle in the back room for tea. In the "
        "afternoon a group of older readers meets by the window to talk about the books they "
        "have finished that week.",
    ),
    (
        "en",
        "To make a simple loaf of bread you need flour, water, salt and a little yeast. Mix "
        "them into a soft dough, knead it for ten minutes, and leave it in a warm place until "
        "it has doubled in size. Shape the loaf, let it rise once more, and bake it in a hot "
        "oven until the crust is brown and the bottom sounds hollow when you tap it.",
    ),
    (
        "en",
        "Rivers carry water from the hills to the sea. Along the way they cut valleys, carry "
        "sand and stones, and give towns a place to grow. Many old cities stand where a river "
        "was narrow enough to cross, and their bridges are often the oldest buildings in them.",
    ),
    (
        "fr",
        "Le marché du samedi commence tôt. Les maraîchers installent leurs étals avant le "
        "lever du soleil, et les premiers clients arrivent avec leurs paniers. On y trouve des "
        "légumes de saison, du fromage, du pain frais et des fleurs. Vers midi, la place se "
        "vide et les cafés se remplissent.",
    ),
    (
        "es",
        "En verano, la familia pasa las tardes en el patio. Los abuelos cuentan historias de "
        "su juventud mientras los niños juegan con el perro. Cuando el sol se pone, todos "
        "cenan juntos bajo la parra y hablan de los planes para el día siguiente.",
    ),
    (
        "de",
        "Im Herbst werden die Tage kürzer und die Blätter färben sich gelb und rot. Viele "
        "Menschen gehen am Wochenende im Wald spazieren und sammeln Pilze oder Kastanien. "
        "Abends sitzt man gern zu Hause, trinkt Tee und liest ein gutes Buch.",
    ),
    (
        "ja",
        "春になると、公園の桜が咲き始めます。週末には多くの人が集まり、木の下でお弁当を"
        "食べながら花を見ます。子どもたちは走り回り、大人たちはゆっくりと話をします。"
        "夕方になると少し寒くなるので、上着を持って行くとよいでしょう。",
    ),
    (
        "ja",
        "駅の近くに小さなパン屋があります。朝早くから焼きたてのパンの香りがして、"
        "通勤する人たちがよく立ち寄ります。店主は毎日新しい種類のパンを一つ作るそうです。",
    ),
]


def arithmetic(rng: random.Random) -> list[tuple[str, list[str]]]:
    """Small sums, differences and products, and a few word problems: each answer a number."""
    rows: list[tuple[str, list[str]]] = []
    seen: set[str] = set()

    def add(question: str, answer: int) -> None:
        if question not in seen:
            seen.add(question)
            rows.append((f"{question} {NUMBER}", [str(answer)]))

    while len(rows) < 30:
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        add(f"What is {a} + {b}?", a + b)
    while len(rows) < 50:
        a, b = rng.randint(5, 30), rng.randint(1, 5)
        add(f"What is {a} - {b}?", a - b)
    while len(rows) < 75:
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        add(f"What is {a} times {b}?", a * b)
    while len(rows) < 85:
        b, q = rng.randint(2, 9), rng.randint(2, 9)
        add(f"What is {b * q} divided by {b}?", q)
    stories = [
        ("Tom has {a} apples and buys {b} more. How many apples does he have now?", "+"),
        ("A box holds {a} pens. {b} pens are taken out. How many pens are left?", "-"),
        ("There are {a} birds on a tree and {b} more land on it. How many birds are there?", "+"),
        ("Sara had {a} sweets and ate {b}. How many sweets does she have left?", "-"),
    ]
    for template, op in stories:
        for _ in range(3):
            a, b = rng.randint(6, 15), rng.randint(1, 5)
            add(template.format(a=a, b=b), a + b if op == "+" else a - b)
    return rows


def main() -> None:
    rng = random.Random(2124)
    rows: list[dict] = []

    def put(kind: str, lang: str, question: str, answers: list[str]) -> None:
        rows.append(
            {
                "id": f"{kind}-{len(rows):03d}",
                "kind": kind,
                "lang": lang,
                "question": question,
                "answers": answers,
            }
        )

    for question, answers in arithmetic(rng):
        put("arithmetic", "en", question, answers)
    for question, answers in FACTS:
        put(
            "fact",
            "en",
            f"{question} {WORD}" if not question.startswith("How many") else f"{question} {NUMBER}",
            answers,
        )
    for i, word in enumerate(ECHO_WORDS):
        put("instruction", "en", ECHO_FORMS[i % len(ECHO_FORMS)].format(w=word), [word])
    for question, answers in INSTRUCTIONS:
        put("instruction", "en", question, answers)
    for lang, question, answers in OTHER_LANGUAGES:
        put("language", lang, question, answers)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "questions.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(OUT / "general_text.jsonl", "w", encoding="utf-8") as f:
        for lang, text in GENERAL_TEXT:
            f.write(json.dumps({"lang": lang, "text": text}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} questions and {len(GENERAL_TEXT)} paragraphs to {OUT}")


if __name__ == "__main__":
    main()
